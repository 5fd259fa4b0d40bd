"""The training loop of the torch forecasters: AdamW, early stopping, a wall-clock budget.

``train_loop`` runs epochs over shuffled training batches, scores the validation batches after
each epoch, keeps the best weights (lowest validation loss; the training loss when there is no
validation data), stops after ``patience`` epochs without improvement, at ``max_epochs``, or
when ``max_seconds`` would be exceeded by another epoch, and restores the best weights. The
learning rate either follows a cosine decay over ``max_epochs`` (``schedule="cosine"``: a
fixed budget of epochs is spent well), a cosine decay over whichever ends first, ``max_epochs``
or the epochs that fit in ``max_seconds`` (``"cosine_budget"``: the planned length is re-estimated
from the time each epoch takes, and the decay never lags the elapsed share of the time budget,
so a slow model still ends its budget at a low rate), or is halved after ``patience // 2``
epochs without improvement (``"plateau"``). With ``ema_decay`` > 0 the
weights that are scored and kept are an exponential moving average of the trained ones
(Polyak averaging), which smooths out the noise of the last updates.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any, Callable, Iterable

import numpy as np

# Idle OpenMP workers sleep instead of spinning: with spinning workers, two threads train ten
# times slower than one as soon as another process wants the cores (measured on a shared 2-core
# machine); sleeping workers cost nothing then and use both cores when they are free. Read by
# the OpenMP runtime when torch loads, so it only applies when this module imports torch first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

from pathlib import Path

from aqi_assets.core.training.forecasting.base import Forecaster, Progress, Stopwatch, report_progress
from aqi_assets.core.training.forecasting.feature_inputs import FeatureScaler
from aqi_assets.core.training.forecasting.sequence_inputs import SequenceScaler

Batches = Callable[[], Iterable[Any]]
SCHEDULES: tuple[str, ...] = ("cosine", "cosine_budget", "plateau")
LossFn = Callable[[torch.nn.Module, Any], tuple[torch.Tensor, int]]


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def busy_cores(sample_seconds: float = 0.25) -> float:
    """Cores the machine keeps busy right now: its CPU utilisation over a short sample (psutil),
    or the 1-minute load average where psutil cannot tell. Unlike the load average, the sample
    does not count work that has just ended (the previous model of a benchmark, a finished step)."""
    try:
        import psutil

        return psutil.cpu_percent(interval=sample_seconds) / 100.0 * (psutil.cpu_count() or available_cores())
    except Exception:  # psutil missing or /proc unreadable
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):
            return 0.0


def free_cores() -> int:
    """The available cores not already busy (``busy_cores``), at least one."""
    cores = available_cores()
    return int(min(cores, max(1, math.floor(cores - busy_cores() + 0.5))))


def set_torch_threads(threads: int) -> None:
    """Let torch use ``threads`` CPU threads; 0 (the trainers' default) means every free core.

    On an idle machine that is every core. When other processes keep the cores busy,
    extra threads only contend with them: measured on a shared 2-core machine, a second thread
    made the GNN's epochs several times slower, not faster, so a busy machine trains on one.
    Idle workers sleep (``OMP_WAIT_POLICY=PASSIVE``, above) rather than spin.
    """
    threads = int(threads) if int(threads) > 0 else free_cores()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def train_loop(
    model: torch.nn.Module,
    train_batches: Batches,
    valid_batches: Batches | None,
    loss_fn: LossFn,
    *,
    max_epochs: int,
    patience: int,
    learning_rate: float,
    weight_decay: float,
    max_seconds: float,
    progress: Progress | None,
    label: str,
    ema_decay: float = 0.0,
    schedule: str = "cosine",
) -> dict[str, Any]:
    """Train ``model`` in place; return the report (epochs, best epoch, losses, seconds)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, not {schedule!r}")
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    averaged = copy.deepcopy(model) if ema_decay > 0 else model
    steps = {"done": 0, "total": 0}

    def after_step() -> None:
        steps["done"] += 1
        if ema_decay > 0:  # warm-up: early averages do not cling to the initial weights
            _update_average(averaged, model, min(ema_decay, (1 + steps["done"]) / (10 + steps["done"])))
        if schedule in ("cosine", "cosine_budget") and steps["total"]:
            fraction = min(steps["done"] / steps["total"], 1.0)
            if schedule == "cosine_budget" and max_seconds > 0:
                fraction = max(fraction, min(clock.seconds / max_seconds, 1.0))
            for group in optimiser.param_groups:
                group["lr"] = learning_rate * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * fraction)))
    clock = Stopwatch()
    best_loss, best_epoch, best_state = math.inf, 0, copy.deepcopy(averaged.state_dict())
    history: list[dict[str, float]] = []
    stale, stop_reason, epoch_seconds = 0, "max_epochs", 0.0
    for epoch in range(1, max_epochs + 1):
        if epoch > 1 and clock.seconds + epoch_seconds > max_seconds:
            stop_reason = "time_budget"
            break
        started = clock.seconds
        model.train()
        batches = list(train_batches())
        steps["total"] = steps["total"] or max_epochs * len(batches)
        train_loss = _run_epoch(model, batches, loss_fn, optimiser, after_step)
        averaged.eval()
        with torch.no_grad():
            valid_loss = _run_epoch(averaged, valid_batches(), loss_fn, None) if valid_batches else math.nan
        epoch_seconds = clock.seconds - started
        if schedule == "cosine_budget" and max_seconds > 0:  # the epochs that fit in the budget
            fit = int(max_seconds // max(clock.seconds / epoch, 1e-9))
            steps["total"] = max(min(max_epochs, fit), epoch) * len(batches)
        score = valid_loss if math.isfinite(valid_loss) else train_loss
        history.append({"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss,
                        "seconds": epoch_seconds})
        improved = score < best_loss - 1e-6
        if improved:
            best_loss, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(averaged.state_dict())
        else:
            stale += 1
            if schedule == "plateau" and stale == max(patience // 2, 1):
                for group in optimiser.param_groups:
                    group["lr"] *= 0.5
        report_progress(progress, f"{label} epoch {epoch}/{max_epochs}: train loss {train_loss:.4f}, "
                                  f"valid loss {valid_loss:.4f}{' (best)' if improved else ''}, "
                                  f"{epoch_seconds:.1f}s")
        if stale >= patience:
            stop_reason = "early_stopping"
            break
    model.load_state_dict(best_state)
    model.eval()
    return {
        "epochs": len(history),
        "best_epoch": best_epoch,
        "best_loss": best_loss,
        "stop_reason": stop_reason,
        "history": history,
        "seconds": clock.seconds,
        "threads": torch.get_num_threads(),
    }


def _update_average(averaged: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for mean, current in zip(averaged.parameters(), model.parameters()):
            mean.mul_(decay).add_(current.detach(), alpha=1.0 - decay)
        for mean, current in zip(averaged.buffers(), model.buffers()):
            mean.copy_(current)


def _run_epoch(model, batches, loss_fn, optimiser, after_step=None) -> float:
    """Mean loss per sample over ``batches``; with an ``optimiser``, one update per batch."""
    total, count = 0.0, 0
    for batch in batches:
        loss, n = loss_fn(model, batch)
        if n == 0:
            continue
        if optimiser is not None:
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            after_step()
        total += float(loss.detach()) * n
        count += n
    return total / count if count else math.nan


#: Typical size of an hourly change of log concentration; scales log-space outputs and errors.
LOG_CHANGE_SCALE = 0.25
OUTPUTS: tuple[str, ...] = ("additive", "multiplicative")


def residual_forecast(out: torch.Tensor, base: torch.Tensor, target_scale: float, output: str) -> torch.Tensor:
    """The forecast from a network output that is a change relative to the latest value ``base``.

    ``additive``: ``base + out · target_scale`` (a change in concentration units);
    ``multiplicative``: ``(1 + base) · exp(out · LOG_CHANGE_SCALE) - 1`` (a relative change, whose
    size naturally grows with the level).
    """
    if output == "additive":
        return base + out * target_scale
    if output == "multiplicative":
        step = torch.clamp(out * LOG_CHANGE_SCALE, -6.0, 6.0)
        return torch.expm1(torch.log1p(torch.clamp(base, min=0.0)) + step)
    raise ValueError(f"output must be one of {OUTPUTS}, not {output!r}")


def blended_loss(forecast: torch.Tensor, target: torch.Tensor, target_scale: float,
                 log_weight: float) -> torch.Tensor:
    """``(1 - log_weight)`` × squared error in units of ``target_scale`` (the spread of the change
    over the horizon) + ``log_weight`` × squared error of log(1 + ·) in units of ``LOG_CHANGE_SCALE``.
    """
    loss = (((forecast - target) / target_scale) ** 2).mean()
    if log_weight > 0:
        log_error = (torch.log1p(torch.clamp(forecast, min=0.0)) - torch.log1p(torch.clamp(target, min=0.0)))
        loss = (1 - log_weight) * loss + log_weight * ((log_error / LOG_CHANGE_SCALE) ** 2).mean()
    return loss


def batch_indices(n: int, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """``0..n-1`` in shuffled (``rng``) or natural order, cut into batches."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def fit_samples(model: torch.nn.Module, train, valid, loss_fn: LossFn, hp: dict[str, Any],
                rng: np.random.Generator, progress: Progress | None, label: str) -> dict[str, Any]:
    """``train_loop`` over shuffled batches of the ``train`` samples (validation in fixed batches
    four times larger), with a trainer's hyperparameters (batch size, epochs, patience, rates,
    time budget, weight averaging, schedule)."""
    batch = int(hp["batch_size"])
    return train_loop(
        model,
        lambda: (train[i] for i in batch_indices(len(train), batch, rng)),
        (lambda: (valid[i] for i in batch_indices(len(valid), 4 * batch, None))) if len(valid) else None,
        loss_fn,
        max_epochs=int(hp["max_epochs"]), patience=int(hp["patience"]),
        learning_rate=float(hp["learning_rate"]), weight_decay=float(hp["weight_decay"]),
        max_seconds=float(hp["max_seconds"]), progress=progress, label=label,
        ema_decay=float(hp["ema_decay"]), schedule=str(hp["schedule"]),
    )


class TorchForecaster(Forecaster):
    """A forecaster whose model is a torch network over scaled inputs (``SequenceScaler``: the last
    ``window_hours``; ``FeatureScaler``: each station's features): the network's weights and the
    scaler are what it saves and loads."""

    model_file = "net.pt"

    def __init__(self, spec=None, **hyperparams):
        super().__init__(spec, **hyperparams)
        self.scaler: SequenceScaler | FeatureScaler | None = None
        self.net: torch.nn.Module | None = None

    @property
    def lookback_hours(self) -> int:
        return int(self.hyperparams["window_hours"]) - 1

    def _new_net(self) -> torch.nn.Module:
        """A fresh network for ``self.scaler`` and the hyperparameters."""
        raise NotImplementedError

    def _prepare_net(self, champion: Forecaster | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Set ``self.net`` (fresh, or a copy of the champion's weights with the champion's
        scaler when it can be continued; ``self.scaler`` is already fitted on the new window)
        and return the hyperparameters of this fit and the report's ``warm_start`` entry.

        Fine-tuning runs ``warm_start_epochs`` at ``warm_start_lr_scale`` × the learning rate,
        with the same early stopping (the best epoch's weights are kept)."""
        hp = dict(self.hyperparams)
        if champion is None:
            self.net = self._new_net()
            return hp, {"used": False}
        problem = self._warm_start_problem(champion)
        if problem is None and (champion.scaler.channel_names != self.scaler.channel_names
                                or champion.scaler.mask_names != self.scaler.mask_names):
            problem = "the champion reads other input channels (the network changed)"
        if problem is None:
            shape = {k: tuple(v.shape) for k, v in champion.net.state_dict().items()}
            self.scaler = scaler_from_dict(champion.scaler.to_dict())
            net = self._new_net()
            if shape != {k: tuple(v.shape) for k, v in net.state_dict().items()}:
                problem = "the champion's network has another architecture"
        if problem is not None:
            self.net = self._new_net()
            return hp, {"used": False, "reason": problem}
        net.load_state_dict(copy.deepcopy(champion.net.state_dict()))
        self.net = net
        hp["max_epochs"] = int(hp["warm_start_epochs"])
        hp["learning_rate"] = float(hp["learning_rate"]) * float(hp["warm_start_lr_scale"])
        return hp, {"used": True, "epochs": hp["max_epochs"], "learning_rate": hp["learning_rate"]}

    def _save_model(self, directory: Path) -> dict[str, Any]:
        torch.save(self.net.state_dict(), directory / self.model_file)
        return {"scaler": self.scaler.to_dict()}

    def _load_model(self, directory: Path, state: dict[str, Any]) -> None:
        self.scaler = scaler_from_dict(state["scaler"])
        self.net = self._new_net()
        self.net.load_state_dict(torch.load(directory / self.model_file, weights_only=True))
        self.net.eval()


def scaler_from_dict(data: dict) -> SequenceScaler | FeatureScaler:
    """The scaler ``to_dict`` wrote, of either kind."""
    return FeatureScaler.from_dict(data) if data.get("kind") == "features" else SequenceScaler.from_dict(data)
