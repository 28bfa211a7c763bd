#!/usr/bin/env python3
"""Independent walk-forward check with Python's xgboost 3.x.

usage: model_walkforward_ref.py REF.csv EVALUATION.csv COST
REF.csv from model_ref_features.py (expected features f_*, close); EVALUATION.csv as written by Tape
(only the fold windows are read). Trains each fold with Tape's default parameters (base_score = mean
training target as float32), target = 1-bar forward log return, purged as Tape does, and prints the
overall metrics as JSON.
"""
import csv, json, sys
import numpy as np
import xgboost as xgb
from scipy import stats

def main():
    ref, ev, cost = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(ref) as f:
        head = f.readline().strip().split(",")
    d = np.genfromtxt(ref, delimiter=",", skip_header=1, missing_values="", filling_values=np.nan)
    ends = np.array([int(l.split(",", 1)[0]) for l in open(ref).read().splitlines()[1:]], dtype=np.int64)
    fcols = [i for i, h in enumerate(head) if h.startswith("f_")]
    X, c = d[:, fcols], d[:, head.index("close")]
    y = np.full(len(c), np.nan); y[:-1] = np.log(c[1:] / c[:-1])
    tend = np.full(len(c), np.iinfo(np.int64).max, dtype=np.int64); tend[:-1] = ends[1:]
    lab = np.isfinite(y)
    P, Y = [], []
    for row in csv.DictReader(open(ev)):
        if row["fold"] == "overall":
            continue
        ts, te, tr0 = int(row["test_start_ns"]), int(row["test_end_ns"]), int(row["train_start_ns"])
        tr = lab & (ends >= tr0) & (ends < ts) & (tend <= ts)
        tt = lab & (ends >= ts) & (ends < te)
        base = float(np.float32(np.mean(y[tr])))
        params = dict(objective="reg:squarederror", booster="gbtree", tree_method="hist", max_depth=4, eta=0.05,
                      subsample=0.8, colsample_bytree=1, min_child_weight=5, reg_lambda=1, alpha=0, gamma=0,
                      max_bin=256, seed=42, nthread=1, base_score=base)
        b = xgb.train(params, xgb.DMatrix(X[tr], label=y[tr], missing=np.nan), 200)
        P.append(b.predict(xgb.DMatrix(X[tt], missing=np.nan)).astype(np.float64)); Y.append(y[tt])
    p, y = np.concatenate(P), np.concatenate(Y)
    pos = np.sign(p)
    gross = float((pos * y).sum())
    turnover = np.abs(np.diff(np.concatenate([[0.0], pos]))).sum()
    nz = y != 0
    print(json.dumps({"n": int(len(p)), "rmse": float(np.sqrt(np.mean((p - y) ** 2))), "mae": float(np.mean(np.abs(p - y))),
                      "directional_accuracy": float(np.mean((p[nz] * y[nz]) > 0)), "ic": float(stats.spearmanr(p, y).statistic),
                      "cum_return": gross, "cum_return_after_cost": gross - cost * turnover}))

if __name__ == "__main__":
    main()
