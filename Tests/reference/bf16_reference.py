"""PyTorch's float32 -> bfloat16 conversion, for BFloat16Tests.

usage: bf16_reference.py < bits.txt
Reads one float32 bit pattern per line (8 hex digits) and prints, per line, the bit pattern of
torch.tensor(x).to(torch.bfloat16) as 4 hex digits (on CPU, as PyTorch rounds: to nearest, ties
to even)."""
import sys

import numpy as np
import torch

words = np.array([int(line, 16) for line in sys.stdin.read().split()], dtype=np.uint32)
floats = torch.from_numpy(words.view(np.float32).copy())
bf16 = floats.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
sys.stdout.write("".join(f"{int(b):04x}\n" for b in bf16))
