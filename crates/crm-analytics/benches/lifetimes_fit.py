"""Times the Python package `lifetimes` (0.11.3) fitting BG/NBD and Gamma-Gamma to the same
data as the Rust benchmark, for comparison. Prints one JSON object.

usage: python3 lifetimes_fit.py CDNOW_sample.txt | --generated FILE.csv
  CDNOW: the 5-column sample; calibration 1997-01-01 .. 1997-09-30, weeks.
  --generated: a CSV `x,t_x,T,mean` written by the Rust benchmark.
"""
import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data


def load_cdnow(path):
    df = pd.read_csv(path, sep=r"\s+", header=None, names=["full", "id", "date", "cds", "dollars"], dtype={"date": str})
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    cal = df[df["date"] <= "1997-09-30"]
    # Daily periods (same-day lines are one purchase), then days / 7 as the papers do.
    s = summary_data_from_transaction_data(cal, "id", "date", monetary_value_col="dollars",
                                           observation_period_end="1997-09-30", freq="D")
    s["recency"] = s["recency"] / 7.0
    s["T"] = s["T"] / 7.0
    return s


def main():
    if sys.argv[1] == "--generated":
        s = pd.read_csv(sys.argv[2])
        s = s.rename(columns={"x": "frequency", "t_x": "recency", "mean": "monetary_value"})
    else:
        s = load_cdnow(sys.argv[1])
    t0 = time.perf_counter()
    bg = BetaGeoFitter()
    bg.fit(s["frequency"], s["recency"], s["T"])
    t1 = time.perf_counter()
    rep = s[s["frequency"] > 0]
    gg = GammaGammaFitter()
    gg.fit(rep["frequency"], rep["monetary_value"])
    t2 = time.perf_counter()
    print(json.dumps({
        "customers": int(len(s)), "repeat_customers": int(len(rep)),
        "r": bg.params_["r"], "alpha": bg.params_["alpha"], "a": bg.params_["a"], "b": bg.params_["b"],
        "p": gg.params_["p"], "q": gg.params_["q"], "gamma": gg.params_["v"],
        "bgnbd_ms": (t1 - t0) * 1000, "gamma_gamma_ms": (t2 - t1) * 1000,
    }))


if __name__ == "__main__":
    main()
