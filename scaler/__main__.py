"""``python -m scaler`` runs the same CLI as the ``cvi-autoscaler`` console script."""

from scaler.cli import main

if __name__ == "__main__":
    main()
