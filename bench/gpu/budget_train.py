"""The wall-clock-budgeted schedule of the GPU training scripts (train_vgg16.py,
train_flowers.py): epoch 1 ramps the rate to a fifth of the peak and carries cuDNN's autotuning
(11.9 s against 1.7 s for the next, VGG-16 on an H200), epoch 2 runs at a fifth of the peak and is
timed; its time fixes how many epochs fit the budget, which then run a linear warm-up to the peak
and a cosine decay, with a test evaluation every `eval_every` epochs and after the last."""
import math
import time


def train_to_budget(epoch, evaluate, peak, budget, t0, *, cap, margin_s, slack, warm_div, eval_every, test_key,
                    say_plan, say_eval):
    """Runs the schedule. `epoch(lr_at)` trains one epoch (lr_at: fraction of the epoch → rate)
    and returns its last loss; `evaluate()` returns test accuracy in %. Returns (log, epochs run)."""
    log = []
    loss = epoch(lambda f: peak * f / 5)
    log.append({"epoch": 1, "loss": loss, "s": time.time() - t0})
    t = time.time()
    loss = epoch(lambda f: peak / 5)
    t_epoch = time.time() - t
    total = max(2, min(cap, int((budget - (time.time() - t0) - margin_s) / (t_epoch * slack))))
    say_plan(t_epoch, loss, total)
    log.append({"epoch": 2, "loss": loss, "s": time.time() - t0})
    warm = max(1, total // warm_div)
    for e in range(total):
        def lr_at(f, e=e):
            g = e + f
            if g < warm:
                return peak / 5 + (peak - peak / 5) * g / warm
            return 0.5 * peak * (1 + math.cos(math.pi * (g - warm) / (total - warm)))
        loss = epoch(lr_at)
        rec = {"epoch": e + 3, "loss": loss, "s": time.time() - t0}
        if (e + 1) % eval_every == 0 or e == total - 1:
            rec[test_key] = evaluate()
            say_eval(e + 3, loss, rec[test_key], rec["s"])
        log.append(rec)
    return log, total + 2
