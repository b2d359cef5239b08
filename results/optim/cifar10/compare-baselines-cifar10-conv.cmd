.venv/bin/metashot optim compare --checkpoint checkpoints/l2l-cifar10-conv --task cifar10-conv --steps 100 --runs 5 --seed 0 --device cpu --tune-runs 1 --lr-grid 0.001,0.0032,0.01,0.032,0.1,0.32 --optimizers lstm,adam,rmsprop,nag,sgd --json --out results/optim/cifar10/compare-shared-cifar10-conv.json --plot results/optim/cifar10/compare-shared-cifar10-conv.png
rc=0 wall_s=1036
