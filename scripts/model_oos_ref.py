#!/usr/bin/env python3
"""Oracle for `tape train`'s model/oos_predictions.csv and model/feature_importance.csv (xgboost 3.x).

usage: model_oos_ref.py oos DATA.csv EVALUATION.csv PARAMS.json OUT.csv
  DATA.csv: header symbol,end_ns,target_end_ns,<feature names...>,target (empty cell = missing/NaN);
  EVALUATION.csv as Tape wrote it (only the fold windows are read). Each fold is trained afresh on the
  rows Tape's documented rule selects (labelled, end in [train_start, test_start), target resolved by
  test_start: purged), base_score = mean training target as float32, then predicts the test rows
  (end in [test_start, test_end)). OUT.csv: symbol,end_ns,fold,prediction (%.9g).
  PARAMS.json: the xgboost params and "rounds".
usage: model_oos_ref.py importance MODEL.json OUT.csv
  OUT.csv: feature,gain,weight,cover from booster.get_score(importance_type=...) (%.9g; absent = 0).
"""
import csv, json, sys
import numpy as np
import xgboost as xgb


def oos(data, evaluation, params_path, out):
    with open(data) as f:
        head = f.readline().strip().split(",")
    rows = list(csv.reader(open(data)))[1:]
    symbols = [r[0] for r in rows]
    ends = np.array([int(r[1]) for r in rows], dtype=np.int64)
    target_ends = np.array([int(r[2]) for r in rows], dtype=np.int64)
    values = np.array([[float(c) if c != "" else np.nan for c in r[3:]] for r in rows], dtype=np.float64)
    names = head[3:-1]
    X, y = values[:, :-1], values[:, -1]
    params = json.load(open(params_path))
    rounds = int(params.pop("rounds"))
    labelled = np.isfinite(y)
    with open(out, "w") as f:
        f.write("symbol,end_ns,fold,prediction\n")
        for row in csv.DictReader(open(evaluation)):
            if row["fold"] == "overall":
                continue
            ts, te, tr0 = int(row["test_start_ns"]), int(row["test_end_ns"]), int(row["train_start_ns"])
            train = labelled & (ends >= tr0) & (ends < ts) & (target_ends <= ts)
            test = labelled & (ends >= ts) & (ends < te)
            p = dict(params, base_score=float(np.float32(np.mean(y[train]))))
            booster = xgb.train(p, xgb.DMatrix(X[train], label=y[train], feature_names=names, missing=np.nan), rounds)
            predictions = booster.predict(xgb.DMatrix(X[test], feature_names=names, missing=np.nan))
            for i, v in zip(np.nonzero(test)[0], predictions):
                f.write("%s,%d,%s,%.9g\n" % (symbols[i], ends[i], row["fold"], v))


def importance(model, out):
    booster = xgb.Booster(model_file=model)
    scores = {t: booster.get_score(importance_type=t) for t in ("gain", "weight", "cover")}
    with open(out, "w") as f:
        f.write("feature,gain,weight,cover\n")
        for name in booster.feature_names:
            f.write("%s,%.9g,%.9g,%.9g\n" % (name, scores["gain"].get(name, 0), scores["weight"].get(name, 0),
                                             scores["cover"].get(name, 0)))


if __name__ == "__main__":
    if sys.argv[1] == "oos":
        oos(*sys.argv[2:6])
    elif sys.argv[1] == "importance":
        importance(*sys.argv[2:4])
    else:
        sys.exit(__doc__)
