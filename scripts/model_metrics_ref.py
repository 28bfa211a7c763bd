#!/usr/bin/env python3
"""Independent reference for TapeModel's evaluation metrics (numpy/scipy).

usage: model_metrics_ref.py PRED.csv COST HORIZON   (PRED.csv: header `p,y`)
Prints JSON: rmse, rmse_baseline, mae, mae_baseline, directional_accuracy, ic, cum_return,
cum_return_after_cost (definitions in docs/model.md).
"""
import json, sys
import numpy as np
from scipy import stats

def main():
    d = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, ndmin=2)
    p, y = d[:, 0], d[:, 1]
    cost, h = float(sys.argv[2]), int(sys.argv[3])
    nz = y != 0
    pos = np.sign(p)
    turnover = np.abs(np.diff(np.concatenate([[0.0], pos]))).sum()
    gross = float((pos * y).sum())
    out = {
        "rmse": float(np.sqrt(np.mean((p - y) ** 2))),
        "rmse_baseline": float(np.sqrt(np.mean(y ** 2))),
        "mae": float(np.mean(np.abs(p - y))),
        "mae_baseline": float(np.mean(np.abs(y))),
        "directional_accuracy": float(np.mean((p[nz] * y[nz]) > 0)),
        "ic": float(stats.spearmanr(p, y).statistic),
        "cum_return": gross / h,
        "cum_return_after_cost": (gross - cost * turnover) / h,
    }
    print(json.dumps(out))

if __name__ == "__main__":
    main()
