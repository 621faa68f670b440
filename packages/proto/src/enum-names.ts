import type { GenEnum } from '@bufbuild/protobuf/codegenv2';

/**
 * A proto enum by lower-case short name — `'object_detection'` for `TASK_TYPE_OBJECT_DETECTION` —
 * derived from the generated descriptor, so no TypeScript code re-types an enum of the contract.
 * `*_UNSPECIFIED` (0) never has a name.
 */
export interface EnumNames<S extends string, N extends number> {
  /** The enum value of a known name; throws for an unknown one (a bug, not bad input). */
  number(name: S): N;
  /** The enum value of any string, case-insensitive, full proto name accepted; undefined when unknown. */
  parse(name: string): N | undefined;
  /** The short name of a value; undefined for 0 or an unknown value. */
  name(value: number): S | undefined;
  /** Every short name, in enum order. */
  names(): S[];
}

/**
 * `enumNames<'a' | 'b'>()(FooSchema)`: the caller names the string type it expects (for example the
 * metric catalog's `TaskType`); the values come from the descriptor.
 */
export function enumNames<S extends string>(): <N extends number>(schema: GenEnum<N>) => EnumNames<S, N> {
  return <N extends number>(schema: GenEnum<N>): EnumNames<S, N> => {
    const prefix = schema.sharedPrefix ?? '';
    const byName = new Map<string, N>();
    const byNumber = new Map<number, S>();
    for (const value of schema.values) {
      if (value.number === 0) continue;
      const short = value.name.slice(prefix.length).toLowerCase();
      byName.set(short, value.number as N);
      byNumber.set(value.number, short as S);
    }
    const lowerPrefix = prefix.toLowerCase();
    return {
      number(name) {
        const n = byName.get(name);
        if (n === undefined) throw new Error(`${schema.typeName} has no value "${name}"`);
        return n;
      },
      parse(name) {
        const key = name.toLowerCase();
        return byName.get(key.startsWith(lowerPrefix) ? key.slice(lowerPrefix.length) : key);
      },
      name: (value) => byNumber.get(value),
      names: () => [...byNumber.values()],
    };
  };
}
