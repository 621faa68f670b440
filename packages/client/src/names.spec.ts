import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { TaskType, TrainingOutcome } from '@training-callbacks/proto';
import { describe, expect, it } from 'vitest';
import { TASK_TYPE_NAMES, toOutcome, toTaskType } from './names.ts';

describe('task type names', () => {
  it('maps the five names to the proto enum', () => {
    expect(TASK_TYPE_NAMES.map(toTaskType)).toEqual([
      TaskType.IMAGE_CLASSIFICATION,
      TaskType.OBJECT_DETECTION,
      TaskType.INSTANCE_SEGMENTATION,
      TaskType.SEMANTIC_SEGMENTATION,
      TaskType.POSE_ESTIMATION,
    ]);
  });

  it('accepts proto enum values and enum names', () => {
    expect(toTaskType(TaskType.POSE_ESTIMATION)).toBe(TaskType.POSE_ESTIMATION);
    expect(toTaskType('TASK_TYPE_OBJECT_DETECTION')).toBe(TaskType.OBJECT_DETECTION);
  });

  it('refuses anything else with INVALID_ARGUMENT listing the choices', () => {
    for (const bad of ['detection', '', 'toString', TaskType.UNSPECIFIED, 99]) {
      let error: unknown;
      try {
        toTaskType(bad as never);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(RpcError);
      expect((error as RpcError).code).toBe(Status.INVALID_ARGUMENT);
      expect((error as RpcError).message).toContain('object_detection');
    }
  });

  it('maps outcome names', () => {
    expect(toOutcome('failed')).toBe(TrainingOutcome.FAILED);
    expect(() => toOutcome('done' as never)).toThrow(/completed, failed or cancelled/);
  });
});
