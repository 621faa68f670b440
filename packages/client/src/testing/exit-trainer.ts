// A trainer process for the exit-path tests (src/exit-paths.spec.ts): it begins its job, queues an
// epoch and batch points without awaiting them, prints "training", then ends the way argv[2] says —
// without ever calling onTrainEnd. Run: node --conditions=@training-callbacks/source exit-trainer.ts MODE
// with TRAINING_CALLBACKS_ADDRESS and JOB_ID set (EXIT_HOOKS=0 turns the exit hooks off).
import { TrainingCallbacks } from '../index.ts';

const mode = process.argv[2];
const callbacks = new TrainingCallbacks({
  jobId: process.env.JOB_ID ?? 'exit-trainer',
  taskType: 'image_classification',
  exitHooks: process.env.EXIT_HOOKS !== '0',
  exitFlushTimeoutMs: 20_000, // generous: a loaded test machine
});
await callbacks.onTrainBegin();
void callbacks.onEpochBegin(0);
for (let step = 0; step < 100; step++) callbacks.onBatchEnd(step, { loss: 1 / (step + 1) });
void callbacks.onEpochEnd(0, { accuracy: 0.5 });

switch (mode) {
  case 'exit': // process.exit() at once: the exit path sends the queued epoch reports itself
    console.log('training');
    process.exit(3);
    break;
  case 'exit-refused': // the same, with a queued report the sidecar refuses
    void callbacks.onEpochEnd(-1, { accuracy: 0.1 });
    console.log('training');
    process.exit(3);
    break;
  case 'drain': // the script simply ends
    console.log('training');
    break;
  case 'drain-failed':
    console.log('training');
    process.exitCode = 2;
    break;
  case 'uncaught':
    console.log('training');
    setTimeout(() => {
      throw new Error('CUDA out of memory');
    }, 10);
    break;
  case 'rejection':
    console.log('training');
    void Promise.reject(new Error('data loader died'));
    break;
  case 'own-handler':
  case 'wait': {
    if (mode === 'own-handler') {
      // The application's own SIGTERM handler decides (it exits with 143).
      process.on('SIGTERM', () => {
        console.log('own handler ran');
        process.exit(143);
      });
    }
    let step = 100;
    setInterval(() => callbacks.onBatchEnd(step++, { loss: 0.01 }), 20);
    // Ready once the queued reports are delivered, so that the signal finds a running job.
    await callbacks.flush();
    console.log('training');
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
