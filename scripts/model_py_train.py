#!/usr/bin/env python3
"""Trains an XGBoost model in Python's xgboost (3.x) for Tape's interop test.

usage: model_py_train.py TRAIN.csv MODEL.json PRED.csv [ROUNDS]
TRAIN.csv: header = feature names..., `target` last; empty cell = missing.
Writes the model as JSON (3.x writes base_score as "[...]") and its predictions on the training rows.
"""
import sys
import numpy as np
import xgboost as xgb

def main():
    src, model, pred = sys.argv[1:4]
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 50
    with open(src) as f:
        names = f.readline().strip().split(",")[:-1]
    d = np.genfromtxt(src, delimiter=",", skip_header=1, ndmin=2, missing_values="", filling_values=np.nan)
    X, y = d[:, :-1], d[:, -1]
    dm = xgb.DMatrix(X, label=y, feature_names=names, missing=np.nan)
    params = {"objective": "reg:squarederror", "tree_method": "hist", "max_depth": 4, "eta": 0.1,
              "nthread": 1, "seed": 7, "subsample": 1.0}
    b = xgb.train(params, dm, num_boost_round=rounds)
    b.save_model(model)
    p = b.predict(dm)
    with open(pred, "w") as f:
        for v in p:
            f.write("%.9g\n" % v)

if __name__ == "__main__":
    main()
