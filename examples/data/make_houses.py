# Writes houses.csv, the data of examples/csv_regression.dl:
#   /usr/bin/python3 examples/data/make_houses.py
# 300 made-up house sales: floor area (in 100 m^2), number of rooms, age
# (years) and price (in 100,000). The price is linear in area and rooms, with
# a small effect of age (which the example's model leaves out) and noise.
# Deterministic: Python's own random module with a fixed seed; the CSV is
# committed, so dlc and the PyTorch reference read the same numbers.
import os, random

rng = random.Random(20240601)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "houses.csv")
with open(path, "w") as f:
    f.write("area,rooms,age,price\n")
    for _ in range(300):
        area = round(rng.uniform(0.4, 2.5), 3)
        rooms = min(7, max(1, round(2.2 * area + rng.gauss(0, 0.8))))
        age = rng.randint(0, 80)
        price = 0.6 + 1.8 * area + 0.15 * rooms - 0.004 * age + rng.gauss(0, 0.15)
        f.write("%.3f,%d,%d,%.3f\n" % (area, rooms, age, price))
