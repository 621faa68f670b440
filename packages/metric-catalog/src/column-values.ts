/**
 * Which canonical metrics fill the store's dedicated `loss`, `accuracy` and `learning_rate` columns:
 * `loss` ← `loss`, else `train_loss`; `accuracy` ← `accuracy`; `learningRate` ← `learning_rate`.
 * A key is absent when its metric is. Values are passed through as they are (NaN included).
 */
export function columnValues(metrics: Readonly<Record<string, number>>): {
  loss?: number;
  accuracy?: number;
  learningRate?: number;
} {
  const pick = (name: string): number | undefined =>
    Object.hasOwn(metrics, name) ? metrics[name] : undefined;
  const columns: { loss?: number; accuracy?: number; learningRate?: number } = {};
  const loss = pick('loss') ?? pick('train_loss');
  if (loss !== undefined) {
    columns.loss = loss;
  }
  const accuracy = pick('accuracy');
  if (accuracy !== undefined) {
    columns.accuracy = accuracy;
  }
  const learningRate = pick('learning_rate');
  if (learningRate !== undefined) {
    columns.learningRate = learningRate;
  }
  return columns;
}
