import { describe, expect, it } from 'vitest';
import { enumNames, JobStatus, JobStatusSchema, TaskType, TaskTypeSchema } from './index.ts';

describe('enumNames', () => {
  const tasks = enumNames<string>()(TaskTypeSchema);

  it('derives short names from the descriptor, in enum order, without UNSPECIFIED', () => {
    expect(tasks.names()).toEqual([
      'image_classification',
      'object_detection',
      'instance_segmentation',
      'semantic_segmentation',
      'pose_estimation',
    ]);
    expect(tasks.name(TaskType.UNSPECIFIED)).toBeUndefined();
    expect(tasks.name(99)).toBeUndefined();
  });

  it('round-trips every value and parses full or short names in any case', () => {
    for (const name of tasks.names()) expect(tasks.name(tasks.number(name))).toBe(name);
    expect(tasks.parse('TASK_TYPE_POSE_ESTIMATION')).toBe(TaskType.POSE_ESTIMATION);
    expect(tasks.parse('Object_Detection')).toBe(TaskType.OBJECT_DETECTION);
    expect(tasks.parse('unspecified')).toBeUndefined();
    expect(tasks.parse('toString')).toBeUndefined();
    expect(() => tasks.number('detection')).toThrow(/no value "detection"/);
  });

  it('works for every enum of the contract', () => {
    expect(enumNames<string>()(JobStatusSchema).number('cancelled')).toBe(JobStatus.CANCELLED);
  });
});
