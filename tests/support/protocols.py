"""Protocol tables the tests assert, written out from the publications (not read from the
protocol files under test)."""

from __future__ import annotations

# TG-101 Table III (serial tissues): (role, volume cc, (1 fx thr, max), (3 fx ...), (5 fx ...))
TG101 = [
    ("spinal_cord", 0.35, (10, 14), (18, 21.9), (23, 30)),
    ("cauda_equina", 5, (14, 16), (21.9, 24), (30, 32)),
    ("sacral_plexus", 5, (14.4, 16), (22.5, 24), (30, 32)),
    ("esophagus", 5, (11.9, 15.4), (17.7, 25.2), (19.5, 35)),
    ("brachial_plexus", 3, (14, 17.5), (20.4, 24), (27, 30.5)),
    ("skin", 10, (23, 26), (30, 33), (36.5, 39.5)),
    ("heart", 15, (16, 22), (24, 30), (32, 38)),
    ("trachea", 4, (10.5, 20.2), (15, 30), (16.5, 40)),
    ("ribs", 1, (22, 30), (28.8, 36.9), (35, 43)),
    ("stomach", 10, (11.2, 12.4), (16.5, 22.2), (18, 32)),
    ("duodenum", 5, (11.2, 12.4), (16.5, 22.2), (18, 32)),
    ("small_bowel", 5, (11.9, 15.4), (17.7, 25.2), (19.5, 35)),
    ("colon", 20, (14.3, 18.4), (24, 28.2), (25, 38)),
    ("rectum", 20, (14.3, 18.4), (24, 28.2), (25, 38)),
]
