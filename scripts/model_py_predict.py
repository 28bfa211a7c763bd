#!/usr/bin/env python3
"""Loads an XGBoost JSON model (e.g. one trained by Tape) in Python's xgboost and predicts feature rows.

usage: model_py_predict.py MODEL.json FEATURES.csv OUT.csv
FEATURES.csv: header = feature names, empty cell = missing. OUT.csv: one prediction per line (%.9g).
"""
import sys
import numpy as np
import xgboost as xgb

def main():
    model, feats, out = sys.argv[1:4]
    with open(feats) as f:
        names = f.readline().strip().split(",")
    X = np.genfromtxt(feats, delimiter=",", skip_header=1, ndmin=2, missing_values="", filling_values=np.nan)
    b = xgb.Booster(model_file=model)
    p = b.predict(xgb.DMatrix(X, feature_names=names, missing=np.nan))
    with open(out, "w") as f:
        for v in p:
            f.write("%.9g\n" % v)

if __name__ == "__main__":
    main()
