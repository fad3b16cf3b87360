#!/usr/bin/env bash
# Runs sweep.py's rows one by one, each while the machine's two cores share an L3: a cache
# line's round trip between the 2 threads (benchmarks/c/round_trip) under LIMIT_NS before the
# row and after it, or the row is run again. A virtual machine's cores can move between one L3
# and two dies from one minute to the next, and a 2-thread step on two dies loses 10-20%.
# Appends each row to CSV, then prints the table and draws the plot from it.
#   bash benchmarks/sweep_one_l3.sh CSV PLOT [LIMIT_NS (150)] [ROUNDS (3)]
set -euo pipefail
cd "$(dirname "$0")/.."
csv=$1
plot=$2
limit=${3:-150}
rounds=${4:-3}
make -s -C benchmarks/c round_trip
rows=$(python -c "import sys; sys.path.insert(0, 'benchmarks'); import sweep; print(len(sweep.SHAPES))")
row_csv=$(mktemp)
trap 'rm -f "$row_csv"' EXIT
for i in $(seq 1 "$rows"); do
    while :; do
        until [ "$(benchmarks/c/round_trip)" -lt "$limit" ]; do sleep 5; done
        rm -f "$row_csv"
        python benchmarks/sweep.py --only "$i" --rounds "$rounds" --csv "$row_csv" > /dev/null
        after=$(benchmarks/c/round_trip)
        if [ "$after" -lt "$limit" ]; then
            break
        fi
        echo "row $i: the cores moved apart during it ($after ns); again" >&2
    done
    if [ ! -s "$csv" ]; then
        head -n 1 "$row_csv" > "$csv"
    fi
    tail -n +2 "$row_csv" >> "$csv"
done
python benchmarks/sweep.py --table-from "$csv" --plot "$plot"
