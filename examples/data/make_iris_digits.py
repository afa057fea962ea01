# Writes iris.csv and digits.csv, the data of examples/iris.dl and
# examples/digits.dl, from the copies bundled with scikit-learn (Debian:
# apt-get install python3-sklearn):
#   /usr/bin/python3 examples/data/make_iris_digits.py
# iris.csv: 150 rows, sepal_length,sepal_width,petal_length,petal_width,
# species (0 setosa, 1 versicolor, 2 virginica), in sklearn's (= UCI's) row
# order, the measurements as the decimals sklearn's file has (one digit).
# digits.csv: 1797 rows, p0..p63 (the 8 x 8 image row by row, integers
# 0..16), label (0..9), in sklearn's row order (UCI's optdigits.tes).
# See README.md for the sources and their licences.
import os

from sklearn.datasets import load_digits, load_iris

HERE = os.path.dirname(os.path.abspath(__file__))

iris = load_iris()
assert iris.data.shape == (150, 4) and list(iris.target_names) == ["setosa", "versicolor", "virginica"]
with open(os.path.join(HERE, "iris.csv"), "w") as f:
    f.write("sepal_length,sepal_width,petal_length,petal_width,species\n")
    for row, species in zip(iris.data, iris.target):
        f.write(",".join("%.1f" % v for v in row) + ",%d\n" % species)

digits = load_digits()
assert digits.data.shape == (1797, 64)
with open(os.path.join(HERE, "digits.csv"), "w") as f:
    f.write(",".join(["p%d" % i for i in range(64)] + ["label"]) + "\n")
    for row, label in zip(digits.data, digits.target):
        assert all(v == int(v) and 0 <= v <= 16 for v in row)
        f.write(",".join("%d" % v for v in row) + ",%d\n" % label)
