"""`make bench-peers`: our CLI against Flux's apply engine and `kubectl apply --server-side`.

Each tool gets a fresh local control plane and the same objects; every request is counted
from the API server's audit log (`audit.py`), never from the tool's own word. The Flux
driver is a small Go program in `flux/`, pinned by its own go.mod and built once into the
shared binary cache (`tools.py`). Run `python -m bench.peers --help`.
"""
