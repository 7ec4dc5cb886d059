"""Training machinery of the search: the distributed setup, the bi-level search loop, fp32 and
QAT epochs, evaluation and checkpoints (driven by :mod:`spikehq.search.cli`)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ..atomic import atomic_path
from .cost import CANDIDATES

__all__ = ["Trainer", "Distributed", "evaluate", "temperature", "save_checkpoint"]

# ---- helpers -----------------------------------------------------------------------------------

def temperature(step: int, total: int, start: float, end: float) -> float:
    """Exponential annealing from ``start`` (step 0) to ``end`` (step total-1)."""
    if total <= 1:
        return end
    return start * (end / start) ** (min(step, total - 1) / (total - 1))


def _cosine(opt, steps: int):
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, steps) / max(steps, 1))) * 0.95 + 0.05)


class Distributed:
    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1:
            import torch.distributed as dist
            if not dist.is_initialized():
                dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        self.main = self.rank == 0

    def barrier(self):
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()

    def close(self):
        if self.world > 1:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()


class _Runner(nn.Module):
    """Everything one training step needs inside a single forward, so DDP sees the whole graph."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, frames, integer: bool = False, tau: float | None = None, hard: bool = False, generator=None):
        m = self.model
        if tau is not None:
            m.set_samples(tau, hard, generator)
        logits = m(frames, integer=integer)
        return logits, m.hardware_loss()


def _batches(n: int, batch: int, gen: torch.Generator, dist: Distributed):
    perm = torch.randperm(n, generator=gen)
    per_step = batch * dist.world
    steps = max(1, n // per_step) if n >= per_step else 1
    for i in range(steps):
        chunk = perm[i * per_step:(i + 1) * per_step]
        yield chunk[dist.rank::dist.world]


def save_checkpoint(obj, path: Path):
    """``torch.save`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


@torch.no_grad()
def evaluate(model, data, integer: bool = False, batch: int = 256) -> tuple[float, torch.Tensor]:
    model.eval()
    preds = []
    for i in range(0, len(data), batch):
        preds.append(model(data.frames[i:i + batch].float(), integer=integer).argmax(dim=1))
    preds = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.int64)
    acc = float((preds == data.labels).float().mean() * 100) if len(data) else 0.0
    return acc, preds


# ---- phases ------------------------------------------------------------------------------------

class Trainer:
    def __init__(self, args, dist: Distributed, train, test):
        self.args, self.dist, self.train, self.test = args, dist, train, test
        n_alpha = max(1, int(round(len(train) * args.alpha_fraction)))
        split = torch.randperm(len(train), generator=torch.Generator().manual_seed(1234))
        self.alpha_idx, self.w_idx = split[:n_alpha], split[n_alpha:]
        self.progress = not args.no_progress and dist.main

    def _wrap(self, model):
        if self.dist.world > 1:
            return nn.parallel.DistributedDataParallel(_Runner(model), find_unused_parameters=True)
        return _Runner(model)

    def _bar(self, total, desc):
        return tqdm(total=total, desc=desc, disable=not self.progress, leave=False, dynamic_ncols=True)

    def train_epochs(self, model, epochs: int, desc: str, *, integer: bool = False, seed: int = 0,
                     on_epoch=None) -> list[float]:
        """Plain (fp32 or fixed-choice QAT) training; returns the loss per epoch."""
        if epochs == 0:
            return []
        args = self.args
        runner = self._wrap(model)
        params = [p for p in model.weight_params() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
        steps_per_epoch = max(1, len(self.train) // (args.batch_size * self.dist.world))
        sched = _cosine(opt, epochs * steps_per_epoch)
        gen = torch.Generator().manual_seed(seed)
        losses = []
        with self._bar(epochs * steps_per_epoch, desc) as bar:
            for epoch in range(epochs):
                model.train()
                total, count = 0.0, 0
                for idx in _batches(len(self.train), args.batch_size, gen, self.dist):
                    x, y = self.train.frames[idx].float(), self.train.labels[idx]
                    logits, _ = runner(x, integer=integer)
                    loss = F.cross_entropy(logits, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    value = float(loss.detach())
                    total, count = total + value, count + 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{value:.3f}")
                losses.append(total / max(count, 1))
                if on_epoch is not None:
                    on_epoch(epoch)
        return losses

    def search(self, model, beta: float, seed: int) -> dict:
        """Bi-level search; returns the probability history and the argmax choices."""
        args = self.args
        model.init_scales()
        model.set_choices(None)
        runner = self._wrap(model)
        w_opt = torch.optim.AdamW([p for p in model.weight_params()], lr=args.lr * 0.5, weight_decay=1e-2)
        a_opt = torch.optim.Adam(model.alphas(), lr=args.alpha_lr, betas=(0.5, 0.999))
        per_step = args.batch_size * self.dist.world
        steps_per_epoch = max(1, len(self.w_idx) // per_step)
        total_steps = args.search_epochs * steps_per_epoch
        sched = _cosine(w_opt, total_steps)
        gen = torch.Generator().manual_seed(seed)
        gumbel = torch.Generator().manual_seed(seed * 1000 + 17 + self.dist.rank)
        history = {"step": [], "tau": [], "loss": [], "probs": {l.name: [] for l in model.quant_layers()}}
        record_every = max(1, total_steps // 200)
        step = 0
        alpha_stream = self._alpha_stream(gen)
        with self._bar(total_steps, f"search β={beta:g}") as bar:
            for _ in range(args.search_epochs):
                model.train()
                perm = self.w_idx[torch.randperm(len(self.w_idx), generator=gen)]
                for i in range(steps_per_epoch):
                    tau = temperature(step, total_steps, args.tau_start, args.tau_end)
                    # Step 1: selection logits, hard one-hot Gumbel sample, CE + β·hardware
                    idx = next(alpha_stream)
                    logits, hw = runner(self.train.frames[idx].float(), tau=tau, hard=True, generator=gumbel)
                    loss_a = F.cross_entropy(logits, self.train.labels[idx]) + beta * hw
                    a_opt.zero_grad(set_to_none=True)
                    w_opt.zero_grad(set_to_none=True)
                    loss_a.backward()
                    a_opt.step()
                    # Step 2: weights, soft Gumbel sample
                    chunk = perm[i * per_step:(i + 1) * per_step][self.dist.rank::self.dist.world]
                    logits, _ = runner(self.train.frames[chunk].float(), tau=tau, hard=False, generator=gumbel)
                    loss_w = F.cross_entropy(logits, self.train.labels[chunk])
                    a_opt.zero_grad(set_to_none=True)
                    w_opt.zero_grad(set_to_none=True)
                    loss_w.backward()
                    w_opt.step()
                    sched.step()
                    if step % record_every == 0 or step == total_steps - 1:
                        history["step"].append(step)
                        history["tau"].append(tau)
                        history["loss"].append(float(loss_a.detach()))
                        for name, p in model.probabilities().items():
                            history["probs"][name].append(p)
                    step += 1
                    bar.update(1)
                    bar.set_postfix(tau=f"{tau:.2f}", loss=f"{float(loss_a.detach()):.3f}")
        for layer in model.quant_layers():
            layer.sample = None
        choices = {layer.name: CANDIDATES[int(layer.alpha.detach().argmax())] for layer in model.quant_layers()}
        return {"history": history, "choices": choices, "probabilities": model.probabilities()}

    def _alpha_stream(self, gen):
        per_step = self.args.batch_size * self.dist.world
        while True:
            perm = self.alpha_idx[torch.randperm(len(self.alpha_idx), generator=gen)]
            for i in range(max(1, len(perm) // per_step)):
                yield perm[i * per_step:(i + 1) * per_step][self.dist.rank::self.dist.world]
