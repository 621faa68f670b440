import { describe, expect, it } from 'vitest';
import { CatalogError } from './catalog-error.ts';
import { checkMetricName } from './metric-name.ts';
import { getTaskCatalog, listTaskCatalogs } from './task-catalog.ts';
import { TASK_TYPES, type TaskType } from './task-type.ts';

describe('catalog content', () => {
  it('has one catalog per task type, in TASK_TYPES order', () => {
    expect(listTaskCatalogs().map((c) => c.task)).toEqual([...TASK_TYPES]);
    expect(TASK_TYPES).toHaveLength(5);
  });

  it.each([
    ['image_classification', 'accuracy'],
    ['object_detection', 'mAP50'],
    ['instance_segmentation', 'mAP50'],
    ['semantic_segmentation', 'miou'],
    ['pose_estimation', 'pck'],
  ] as const)('%s has primary metric %s', (task, primary) => {
    expect(getTaskCatalog(task).primaryMetric).toBe(primary);
  });

  it.each([
    ['image_classification', ['accuracy', 'top5_accuracy', 'train_loss', 'val_loss', 'learning_rate']],
    [
      'object_detection',
      [
        'mAP50',
        'mAP50-95',
        'precision',
        'recall',
        'train_box_loss',
        'train_cls_loss',
        'train_dfl_loss',
        'val_box_loss',
        'val_cls_loss',
        'val_dfl_loss',
        'learning_rate',
      ],
    ],
    [
      'instance_segmentation',
      [
        'mAP50',
        'mAP50-95',
        'mask_mAP50',
        'mask_mAP50-95',
        'precision',
        'recall',
        'mask_precision',
        'mask_recall',
        'train_box_loss',
        'train_seg_loss',
        'train_cls_loss',
        'train_dfl_loss',
        'val_box_loss',
        'val_seg_loss',
        'val_cls_loss',
        'val_dfl_loss',
        'learning_rate',
      ],
    ],
    [
      'semantic_segmentation',
      ['miou', 'pixel_accuracy', 'mean_accuracy', 'dice', 'train_loss', 'val_loss', 'learning_rate'],
    ],
    [
      'pose_estimation',
      [
        'pck',
        'pose_mAP50',
        'pose_mAP50-95',
        'mAP50',
        'train_pose_loss',
        'train_kobj_loss',
        'train_box_loss',
        'train_cls_loss',
        'val_pose_loss',
        'val_kobj_loss',
        'val_box_loss',
        'val_cls_loss',
        'learning_rate',
      ],
    ],
  ] as const)('%s includes what a practitioner expects', (task, names) => {
    const defined = getTaskCatalog(task).standardMetrics.map((d) => d.name);
    expect(defined).toEqual(expect.arrayContaining([...names]));
  });

  it('labels the box metrics "Box …" only where mask or keypoint versions exist', () => {
    const label = (task: TaskType, name: string) =>
      getTaskCatalog(task).standardMetrics.find((d) => d.name === name)?.label;
    expect(label('object_detection', 'mAP50')).toBe('mAP@0.5');
    expect(label('instance_segmentation', 'mAP50')).toBe('Box mAP@0.5');
    expect(label('pose_estimation', 'recall')).toBe('Box recall');
  });

  it('says learning_rate is informational', () => {
    for (const catalog of listTaskCatalogs()) {
      const lr = catalog.standardMetrics.find((d) => d.name === 'learning_rate');
      expect(lr?.higherIsBetter).toBe(false);
      expect(lr?.description).toMatch(/informational/);
    }
  });

  it('refuses an unknown task type with the list of valid ones', () => {
    expect(() => getTaskCatalog('depth_estimation' as TaskType)).toThrow(CatalogError);
    expect(() => getTaskCatalog('depth_estimation' as TaskType)).toThrow(
      /expected one of image_classification/,
    );
  });

  it('is deeply frozen', () => {
    const catalog = getTaskCatalog('object_detection');
    expect(Object.isFrozen(catalog)).toBe(true);
    expect(Object.isFrozen(catalog.standardMetrics)).toBe(true);
    expect(Object.isFrozen(catalog.standardMetrics[0])).toBe(true);
    expect(Object.isFrozen(catalog.aliases)).toBe(true);
    expect(Object.isFrozen(catalog.aliases[0])).toBe(true);
    expect(Object.isFrozen(listTaskCatalogs())).toBe(true);
  });
});

describe.each(TASK_TYPES)('data integrity of %s', (task) => {
  const catalog = getTaskCatalog(task);
  const names = catalog.standardMetrics.map((d) => d.name);

  it('lists its primary metric first among its standard metrics', () => {
    expect(catalog.standardMetrics[0]?.name).toBe(catalog.primaryMetric);
    const primary = catalog.standardMetrics[0];
    expect(primary?.higherIsBetter).toBe(true);
  });

  it('defines each standard metric once, with a valid name, a label, a format and one sentence', () => {
    expect(new Set(names).size).toBe(names.length);
    for (const d of catalog.standardMetrics) {
      expect(checkMetricName(d.name), d.name).toBeUndefined();
      expect(d.label.trim(), d.name).not.toBe('');
      expect(['percent', 'float', 'int']).toContain(d.format);
      expect(typeof d.higherIsBetter).toBe('boolean');
      expect(d.description, d.name).toMatch(/^[A-Z].*\.$/);
      expect(d.description.split(/\.\s+[A-Z]/), d.name).toHaveLength(1);
    }
  });

  it('makes every loss lower-is-better and every percent metric higher-is-better', () => {
    for (const d of catalog.standardMetrics) {
      if (d.name.endsWith('_loss')) {
        expect(d.higherIsBetter, d.name).toBe(false);
        expect(d.format, d.name).toBe('float');
      }
      if (d.format === 'percent') {
        expect(d.higherIsBetter, d.name).toBe(true);
      }
    }
  });

  it('has train_loss, val_loss and learning_rate', () => {
    expect(names).toEqual(expect.arrayContaining(['train_loss', 'val_loss', 'learning_rate']));
  });

  it('points every alias at a standard metric of the task, with a positive finite scale', () => {
    for (const a of catalog.aliases) {
      expect(names, a.alias).toContain(a.name);
      expect(Number.isFinite(a.scale) && a.scale > 0, a.alias).toBe(true);
    }
  });

  it('never lists an alias twice, and no alias is itself a canonical name', () => {
    const aliases = catalog.aliases.map((a) => a.alias);
    expect(new Set(aliases).size).toBe(aliases.length);
    for (const alias of aliases) {
      expect(names, alias).not.toContain(alias);
      expect(checkMetricName(alias), alias).toBeUndefined();
    }
  });

  it('pairs a training name with a validation alias and a standard training metric of the same unit', () => {
    for (const p of catalog.trainingValidationPairs) {
      const validation = catalog.aliases.find((a) => a.alias === p.validation);
      expect(validation, p.validation).toBeDefined();
      expect(names, p.trainingName).toContain(p.trainingName);
      expect(p.trainingName, p.training).not.toBe(validation?.name);
      const format = (n: string) => catalog.standardMetrics.find((d) => d.name === n)?.format;
      expect(format(p.trainingName), p.training).toBe(format(validation!.name));
      expect(p.framework).not.toBe('');
    }
  });

  it('only scales aliases of percent metrics', () => {
    for (const a of catalog.aliases.filter((x) => x.scale !== 1)) {
      expect(catalog.standardMetrics.find((d) => d.name === a.name)?.format, a.alias).toBe('percent');
    }
  });
});
