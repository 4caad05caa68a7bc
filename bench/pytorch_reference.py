#!/usr/bin/env python3
"""The relatent dSprites training step in PyTorch, for side-by-side throughput.

Same networks as relatent's (SPEC section 2: four 4x4 stride-2 convolutions with 32 channels,
batch norm and LeakyReLU(0.1); 1024-unit hidden layers; latent 8; transposed convolutions
back to 64x64; a 3x1024 tanh discriminator) and the same step: one autoencoder update
(reconstruction BCE summed over pixels, averaged over the batch, plus beta times the
non-saturating adversarial loss) and one discriminator update, each with its own Adam.

Usage (not needed by relatent's tests or CI):

    python3 bench/pytorch_reference.py --threads 2 --batch 64 --repeats 20
    cargo run --release -- bench --batch 64 --json

and compare `train_images_per_s` with this script's output, run on the same machine with the
same thread count (`RAYON_NUM_THREADS` for relatent). With `--ops` it times each layer alone
instead (forward + backward of the output's sum, summed over the layers of one op), the
counterpart of `relatent bench --ops`.
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

LATENT = 8
CHANNELS = 32
WIDTH = 1024


def conv_block(cin):
    return nn.Sequential(nn.Conv2d(cin, CHANNELS, 4, 2, 1), nn.BatchNorm2d(CHANNELS), nn.LeakyReLU(0.1))


def deconv_block(cout, last):
    layers = [nn.ConvTranspose2d(CHANNELS, cout, 4, 2, 1)]
    if not last:
        layers += [nn.BatchNorm2d(cout), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(conv_block(1), conv_block(CHANNELS), conv_block(CHANNELS), conv_block(CHANNELS))
        self.hidden = nn.Linear(CHANNELS * 4 * 4, WIDTH)
        self.out = nn.Linear(WIDTH, LATENT)

    def forward(self, x):
        return self.out(F.leaky_relu(self.hidden(self.convs(x).flatten(1)), 0.1))


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(LATENT, WIDTH)
        self.to_grid = nn.Linear(WIDTH, CHANNELS * 4 * 4)
        self.deconvs = nn.Sequential(
            deconv_block(CHANNELS, False), deconv_block(CHANNELS, False), deconv_block(CHANNELS, False), deconv_block(1, True)
        )

    def forward(self, z):
        x = self.to_grid(F.leaky_relu(self.hidden(z), 0.1))
        return self.deconvs(x.view(-1, CHANNELS, 4, 4))


def discriminator():
    return nn.Sequential(
        nn.Linear(LATENT, WIDTH), nn.Tanh(), nn.Linear(WIDTH, WIDTH), nn.Tanh(), nn.Linear(WIDTH, WIDTH), nn.Tanh(), nn.Linear(WIDTH, 1)
    )


def op_cases(batch, device):
    """(op name, inputs, function) for every layer of one step, in relatent bench --ops order."""
    rand = lambda *shape: torch.randn(*shape, device=device)
    cases = []
    side, cin = 64, 1
    for _ in range(4):
        cases.append(("conv2d", [rand(batch, cin, side, side), rand(CHANNELS, cin, 4, 4)], lambda x, w: F.conv2d(x, w, None, 2, 1)))
        side //= 2
        cases.append(("batch norm + LeakyReLU", [rand(batch, CHANNELS, side, side)], batch_norm_leaky(device)))
        cin = CHANNELS
    for i, o in [(CHANNELS * 16, WIDTH), (WIDTH, LATENT), (LATENT, WIDTH), (WIDTH, CHANNELS * 16)]:
        layer = nn.Linear(i, o).to(device)
        cases.append(("linear", [rand(batch, i)], layer))
        if o == WIDTH:
            cases.append(("LeakyReLU", [rand(batch, WIDTH)], lambda x: F.leaky_relu(x, 0.1)))
    side = 4
    for i in range(4):
        cout = 1 if i == 3 else CHANNELS
        cases.append(("conv_transpose2d", [rand(batch, CHANNELS, side, side), rand(CHANNELS, cout, 4, 4)], lambda x, w: F.conv_transpose2d(x, w, None, 2, 1)))
        side *= 2
        if i < 3:
            cases.append(("batch norm + LeakyReLU", [rand(batch, cout, side, side)], batch_norm_leaky(device)))
    targets = torch.sigmoid(rand(batch, 1, 64, 64))
    cases.append(("BCE with logits", [rand(batch, 1, 64, 64)], lambda l: F.binary_cross_entropy_with_logits(l, targets, reduction="sum") / batch))
    cases += [("tanh", [rand(batch, WIDTH)], torch.tanh)] * 3
    return cases


def batch_norm_leaky(device):
    norm = nn.BatchNorm2d(CHANNELS).to(device)
    return lambda x: F.leaky_relu(norm(x), 0.1)


def time_ops(args, device):
    """Median forward + backward milliseconds per op, summed over its layers."""
    table = {}
    for op, inputs, f in op_cases(args.batch, device):
        inputs = [t.requires_grad_() for t in inputs]
        times = []
        for i in range(args.warmup + args.repeats):
            start = time.perf_counter()
            f(*inputs).sum().backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
        layers, ms = table.get(op, (0, 0.0))
        table[op] = (layers + 1, ms + statistics.median(times) * 1e3)
    return [{"op": op, "layers": n, "pytorch_ms": ms} for op, (n, ms) in table.items()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (compare with relatent built --features cuda)")
    parser.add_argument("--ops", action="store_true", help="time each layer alone (like relatent bench --ops)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.ops:
        ops = time_ops(args, device)
        print(json.dumps({"framework": f"pytorch {torch.__version__}", "threads": args.threads, "batch": args.batch, "ops": ops}, indent=2))
        return

    encoder, decoder, disc = Encoder().to(device), Decoder().to(device), discriminator().to(device)
    opt_ae = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=5e-4)
    opt_disc = torch.optim.Adam(disc.parameters(), lr=5e-4)
    images = (torch.rand(args.batch, 1, 64, 64, device=device) > 0.9).float()

    def step():
        z = encoder(images)
        recon = F.binary_cross_entropy_with_logits(decoder(z), images, reduction="sum") / args.batch
        adversarial = F.softplus(-disc(z)).mean()
        opt_ae.zero_grad()
        (recon + args.beta * adversarial).backward()
        opt_ae.step()
        prior = torch.rand(args.batch, LATENT, device=device) * 2 - 1
        d_loss = F.softplus(-disc(prior)).mean() + F.softplus(disc(z.detach())).mean()
        opt_disc.zero_grad()
        d_loss.backward()
        opt_disc.step()
        # relatent reads the step's losses back, which waits for the device; so does this.
        d_loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(json.dumps({
        "framework": f"pytorch {torch.__version__}",
        "device": args.device,
        "threads": args.threads,
        "batch": args.batch,
        "train_step_ms": median * 1e3,
        "train_images_per_s": args.batch / median,
    }, indent=2))


if __name__ == "__main__":
    main()
