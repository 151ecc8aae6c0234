"""The Python side of the dataset benchmark: the original SR-DPR ByteDataset reader and converter.

usage: bench_dataset.py --dataset D --reads N  |  --jsonl F --output D   (prints JSON lines)
Reader: seek 4 + 6*i in idxs.pkl, read the 6-byte offset, seek data.pkl, pickle.load (the original's
__getitem__). Converter: json.loads each line, record data.tell(), pickle.dump (protocol 4), then
idxs.pkl. Indices come from the same SplitMix64 sequence as `srdpr bench-dataset`.
"""
import argparse, json, os, pickle, time

def splitmix(seed, n, count):
    state, mask, out = seed, (1 << 64) - 1, []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        out.append(z % count)
    return out

class ByteDataset:
    def __init__(self, path):
        self.idxs = open(os.path.join(path, "idxs.pkl"), "rb")
        self.data = open(os.path.join(path, "data.pkl"), "rb")
        self.count = int.from_bytes(self.idxs.read(4), "big")

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        self.idxs.seek(4 + 6 * i)
        self.data.seek(int.from_bytes(self.idxs.read(6), "big"))
        return pickle.load(self.data)

def create_dataset(input_jsonl_path, output_bytedataset_path):
    idxs = []
    with open(input_jsonl_path, "r", encoding="utf-8") as reader, \
            open(os.path.join(output_bytedataset_path, "data.pkl"), "wb") as data:
        for line in reader:
            sample = json.loads(line)
            idxs.append(data.tell())
            pickle.dump(sample, data, protocol=4)
    with open(os.path.join(output_bytedataset_path, "idxs.pkl"), "wb") as f:
        f.write(len(idxs).to_bytes(4, "big"))
        for offset in idxs:
            f.write(offset.to_bytes(6, "big"))
    return len(idxs)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset"); ap.add_argument("--reads", type=int, default=200_000)
    ap.add_argument("--jsonl"); ap.add_argument("--output"); ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    if a.dataset:
        ds = ByteDataset(a.dataset)
        indices = splitmix(1234, a.reads, len(ds))
        best, best_cpu = float("inf"), float("inf")
        for _ in range(a.repeats):
            checksum = 0
            t, c = time.perf_counter(), time.process_time()
            for i in indices:
                s = ds[i]
                checksum += s["sample_id"] + len(s["questions"]) + len(s["hardneg_contexts"])
            best = min(best, time.perf_counter() - t)
            best_cpu = min(best_cpu, time.process_time() - c)
        print(json.dumps({"bench": "dataset_random_reads", "anchor": "python", "samples": len(ds), "reads": a.reads,
                          "reads_per_second": a.reads / best, "seconds": best,
                          "reads_per_cpu_second": a.reads / best_cpu, "cpu_seconds": best_cpu, "checksum": checksum}))
    if a.jsonl:
        os.makedirs(a.output, exist_ok=True)
        best, best_cpu = float("inf"), float("inf")
        for _ in range(a.repeats):
            t, c = time.perf_counter(), time.process_time()
            n = create_dataset(a.jsonl, a.output)
            best = min(best, time.perf_counter() - t)
            best_cpu = min(best_cpu, time.process_time() - c)
        size = os.path.getsize(a.jsonl)
        print(json.dumps({"bench": "create_dataset", "anchor": "python", "samples": n, "input_bytes": size,
                          "mb_per_second": size / 1e6 / best, "seconds": best,
                          "mb_per_cpu_second": size / 1e6 / best_cpu, "cpu_seconds": best_cpu}))

if __name__ == "__main__":
    main()
