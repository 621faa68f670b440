import { describe, expect, it } from 'vitest';
import { columnValues } from './column-values.ts';

describe('columnValues', () => {
  it('fills loss from loss, accuracy and learning rate', () => {
    expect(columnValues({ loss: 1, train_loss: 2, accuracy: 0.5, learning_rate: 0.01, val_loss: 3 })).toEqual(
      {
        loss: 1,
        accuracy: 0.5,
        learningRate: 0.01,
      },
    );
  });

  it('falls back to train_loss for the loss column', () => {
    expect(columnValues({ train_loss: 2 })).toEqual({ loss: 2 });
  });

  it('leaves absent columns out and passes NaN through', () => {
    const columns = columnValues({ accuracy: Number.NaN, mAP50: 0.5 });
    expect(Object.keys(columns)).toEqual(['accuracy']);
    expect(columns.accuracy).toBeNaN();
  });

  it('does not fall back when loss is present but NaN', () => {
    expect(columnValues({ loss: Number.NaN, train_loss: 2 }).loss).toBeNaN();
  });

  it('ignores prototype properties', () => {
    expect(columnValues({})).toEqual({});
  });
});
