"""A plain PyTorch training loop in the style of timm's train.py, reporting to the sidecar.

The reporting code is the 10 lines marked ``# report`` (tests/test_example_size.py measures them on
the code itself: the import, every statement using the client, and the step counter kept only to be
reported). timm reports top-1 as a percentage
(``eval_top1`` = 91.5); it is sent as is and the sidecar converts it to the fraction 0.915.

Run (with a sidecar listening on $TRAINING_CALLBACKS_ADDRESS, default 127.0.0.1:50051):
    python examples/plain_loop.py --job-id my-first-job
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch import nn

from training_callbacks import TrainingCallbacks  # report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()

    torch.manual_seed(0)
    x = torch.randn(512, 16)
    y = (x[:, :4].sum(dim=1) > 0).long()  # a learnable synthetic task
    train_x, train_y, val_x, val_y = x[:384], y[:384], x[384:], y[384:]
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    checkpoint = Path(tempfile.gettempdir()) / f"{args.job_id}-last.pt"

    callbacks = TrainingCallbacks(args.job_id, "image_classification", framework="timm", model_name="mlp", training_config=vars(args))  # report
    with callbacks:  # report: begins the job; a raised exception ends it as failed
        step = 0  # report
        for epoch in range(args.epochs):
            callbacks.on_epoch_begin(epoch)  # report
            model.train()
            for i in range(0, len(train_x), 32):
                loss = loss_fn(model(train_x[i : i + 32]), train_y[i : i + 32])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                callbacks.on_batch_end(step, {"loss": loss.item(), "lr": args.lr})  # report
                step += 1  # report
            model.eval()
            with torch.no_grad():
                logits = model(val_x)
                eval_loss = loss_fn(logits, val_y).item()
                top1 = (logits.argmax(dim=1) == val_y).float().mean().item() * 100  # percent, like timm
            callbacks.on_epoch_end(epoch, {"train_loss": loss.item(), "eval_loss": eval_loss, "eval_top1": top1, "lr": args.lr})  # report
            torch.save(model.state_dict(), checkpoint)
            callbacks.log_artifact(checkpoint, "checkpoints")  # report
        callbacks.on_train_end({"eval_top1": top1})  # report


if __name__ == "__main__":
    main()
