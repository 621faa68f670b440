import type { DescFile } from '@bufbuild/protobuf';
import { toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import type { Server } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';

function collect(file: DescFile, into: Map<string, DescFile>): void {
  if (into.has(file.name)) return;
  for (const dependency of file.dependencies) collect(dependency, into);
  into.set(file.name, file);
}

/**
 * Serves gRPC server reflection (v1 and v1alpha, via @grpc/reflection) for the services in `files`,
 * so that grpcurl, grpcui and Postman can call the sidecar without the .proto files.
 */
export function addReflection(server: Server, files: readonly DescFile[]): void {
  const all = new Map<string, DescFile>();
  for (const file of files) collect(file, all);
  const fileDescriptorProtos = [...all.values()].map((file) =>
    Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)),
  );
  // @grpc/reflection reads only `fileDescriptorProtos` from each entry of a proto-loader package
  // definition; one entry carrying every file is enough.
  const packageDefinition = { files: { fileDescriptorProtos } };
  new ReflectionService(packageDefinition as never).addToServer(server);
}
