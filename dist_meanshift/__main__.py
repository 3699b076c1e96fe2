"""``python -m dist_meanshift``: the dist-meanshift command."""

from dist_meanshift.cli import main

main()
