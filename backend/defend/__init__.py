"""Defences against explanation manipulation: robust training, distillation, gradient regularisation,
attribution alignment (Zeng2021) and ATEX (Tang2022), and the measurements that judge them."""
