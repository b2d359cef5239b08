.venv/bin/metashot optim compare --task cifar10-conv-5label --steps 100 --runs 5 --seed 0 --device cpu --tune-runs 1 --lr-grid 0.1,0.32,1,3.2 --optimizers sgd --json --out results/optim/cifar10/compare-sgd-wider-grid-cifar10-conv-5label.json
rc=0
