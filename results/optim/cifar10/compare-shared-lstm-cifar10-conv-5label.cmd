.venv/bin/metashot optim compare --checkpoint checkpoints/l2l-cifar10-conv --task cifar10-conv-5label --steps 100 --runs 5 --seed 0 --device cpu --tune-runs 1 --lr-grid 0.001,0.0032,0.01,0.032,0.1,0.32 --optimizers lstm --json --out results/optim/cifar10/compare-shared-lstm-cifar10-conv-5label.json --plot results/optim/cifar10/compare-shared-lstm-cifar10-conv-5label.png
rc=0 wall_s=110
