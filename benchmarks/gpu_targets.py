"""The GPU backend's targets, measured side by side with PyTorch on the same device, in one run.

    python benchmarks/gpu_targets.py [--n 4000000] [--d 256] [--repeat 7] [--json out.json]

1. ``loss_grad`` on n × d float32 X resident on the device: effective bandwidth
   X.nbytes / time, against the device-to-device copy bandwidth of an X-sized
   buffer (bytes read + written) and against torch's two-pass ``X @ w`` then
   ``X.T @ r``.
2. ``LogisticRegression(backend="cuda", solver="lbfgs").fit`` against
   ``torch.optim.LBFGS`` (strong Wolfe) on the same device and objective
   (C = 1: Σ loss + ½‖w‖²), both starting from X already on the device (fastlr
   takes the torch tensor through ``__cuda_array_interface__``, no copy); the
   objective each reaches is scored by the same float64 code and compared with
   the CPU backend's fit.
3. One SGD epoch, batch 256 and 4096: fastlr's backend ``sgd_epoch`` against a
   torch CUDA mini-batch loop (forward, loss, backward, ``optimizer.step``).

Every timing ends with a device synchronisation; medians of ``--repeat`` runs
after a warm-up (JIT compile, cuBLAS handles). Needs a CUDA GPU, numba-cuda
and torch with CUDA.
"""

import argparse
import json
import statistics
import time

import numpy as np


def median_seconds(fn, sync, repeat):
    fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4_000_000)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--fit-n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json")
    args = parser.parse_args()

    import torch
    from numba import cuda

    import fastlr
    from fastlr._math import LOG
    from fastlr.backends import SGDSchedule, get_backend
    from fastlr.peers import objective

    def sync():
        cuda.synchronize()
        torch.cuda.synchronize()

    device = torch.device("cuda")
    results = {"device": torch.cuda.get_device_name(0), "n": args.n, "d": args.d,
               "repeat": args.repeat, "torch": torch.__version__}
    rng = np.random.default_rng(0)
    n, d = args.n, args.d
    Xt = torch.randn(n, d, device=device, dtype=torch.float32)
    w_true = torch.randn(d, device=device) / d ** 0.5
    yt = (Xt @ w_true + 0.5 * torch.randn(n, device=device) > 0).to(torch.float32)
    y_host = yt.cpu().numpy().astype(np.int32)
    nbytes = Xt.numel() * Xt.element_size()

    # 1. device copy bandwidth, fastlr loss_grad, torch two-pass
    dst = torch.empty_like(Xt)
    t_copy = median_seconds(lambda: dst.copy_(Xt), sync, args.repeat)
    dst = None  # free it before the fits
    backend = get_backend("cuda")
    data = backend.put(Xt, y_host)
    W = rng.standard_normal((1, d)) / np.sqrt(d)
    b = np.array([0.1])
    t_fastlr = median_seconds(lambda: backend.loss_grad(data, W, b, LOG), sync, args.repeat)
    w_t = torch.as_tensor(W[0], dtype=torch.float32, device=device)

    def torch_two_pass():
        z = Xt @ w_t + 0.1
        loss = torch.sum(torch.nn.functional.softplus(z) - yt * z)
        r = torch.sigmoid(z) - yt
        return loss.item(), (Xt.T @ r).cpu(), torch.sum(r).item()

    t_torch = median_seconds(torch_two_pass, sync, args.repeat)
    copy_gbps = 2 * nbytes / t_copy / 1e9
    results["loss_grad"] = {
        "copy_s": t_copy, "copy_gbps_read_plus_write": copy_gbps,
        "fastlr_s": t_fastlr, "fastlr_gbps": nbytes / t_fastlr / 1e9,
        "fastlr_fraction_of_copy": nbytes / t_fastlr / 1e9 / copy_gbps,
        "torch_two_pass_s": t_torch, "speedup_vs_torch": t_torch / t_fastlr,
    }
    print(json.dumps(results["loss_grad"], indent=1), flush=True)

    # 2. L-BFGS fit, fastlr cuda vs torch L-BFGS, same objective; CPU backend as the reference
    m = min(args.fit_n, n)
    Xf, yf = Xt[:m].contiguous(), yt[:m].contiguous()
    X_host, yf_host = Xf.cpu().numpy(), y_host[:m]

    def fastlr_fit():
        return fastlr.LogisticRegression(backend="cuda", solver="lbfgs", tol=1e-6).fit(Xf, yf_host)

    def torch_fit():
        model = torch.nn.Linear(d, 1, device=device)
        with torch.no_grad():
            model.weight.zero_()
            model.bias.zero_()
        optimizer = torch.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe",
                                      max_iter=100, tolerance_grad=1e-6)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        scale = 1.0 / (2.0 * m)

        def closure():
            optimizer.zero_grad()
            loss = loss_fn(model(Xf)[:, 0], yf) + scale * model.weight.pow(2).sum()
            loss.backward()
            return loss
        optimizer.step(closure)
        return model

    t_fit = median_seconds(fastlr_fit, sync, max(3, args.repeat // 2))
    t_torch_fit = median_seconds(torch_fit, sync, max(3, args.repeat // 2))
    gpu_model, torch_model = fastlr_fit(), torch_fit()
    cpu_model = fastlr.LogisticRegression(backend="cpu", solver="lbfgs", tol=1e-6).fit(X_host, yf_host)
    f_cpu = objective(X_host, yf_host, cpu_model.coef_, cpu_model.intercept_)
    f_gpu = objective(X_host, yf_host, gpu_model.coef_, gpu_model.intercept_)
    f_torch = objective(X_host, yf_host, torch_model.weight.detach().cpu().numpy().astype(np.float64),
                        torch_model.bias.detach().cpu().numpy().astype(np.float64))
    results["fit"] = {"n": m, "fastlr_cuda_s": t_fit, "torch_lbfgs_s": t_torch_fit,
                      "speedup_vs_torch": t_torch_fit / t_fit, "objective_cpu": f_cpu,
                      "objective_fastlr_cuda": f_gpu, "objective_torch": f_torch,
                      "gap_fastlr_cuda_vs_cpu": (f_gpu - f_cpu) / abs(f_cpu),
                      "gap_torch_vs_cpu": (f_torch - f_cpu) / abs(f_cpu),
                      "n_iter_fastlr": int(gpu_model.n_iter_[0])}
    print(json.dumps(results["fit"], indent=1), flush=True)

    # 3. one SGD epoch per batch size
    data_fit = backend.put(Xf, yf_host)
    results["sgd"] = {}
    for batch_size in (256, 4096):
        order = np.arange(-(-m // batch_size))
        schedule = SGDSchedule(alpha=1.0 / m, fit_intercept=True, eta0=0.1, power_t=0.0,
                               step0=0, batch_size=batch_size)

        def fastlr_epoch():
            Wk, bk = np.zeros((1, d)), np.zeros(1)
            backend.sgd_epoch(data_fit, Wk, bk, LOG, schedule, order)

        model = torch.nn.Linear(d, 1, device=device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loss_fn = torch.nn.BCEWithLogitsLoss()

        def torch_epoch():
            for start in range(0, m, batch_size):
                xb, yb = Xf[start:start + batch_size], yf[start:start + batch_size]
                loss = loss_fn(model(xb)[:, 0], yb) + (0.5 / m) * model.weight.pow(2).sum()
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()

        t_f = median_seconds(fastlr_epoch, sync, 3)
        t_t = median_seconds(torch_epoch, sync, 3)
        results["sgd"][str(batch_size)] = {"fastlr_s": t_f, "torch_loop_s": t_t,
                                           "speedup_vs_torch": t_t / t_f}
    print(json.dumps(results["sgd"], indent=1), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
