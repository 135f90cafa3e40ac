"""python -m studio.ui [--host H] [--port P] [--share]"""
import argparse

from .app import launch

parser = argparse.ArgumentParser(prog="python -m studio.ui", description="Start the studio browser app.")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=7860)
parser.add_argument("--share", action="store_true")
parser.add_argument("--device", default="auto")
args = parser.parse_args()
launch(host=args.host, port=args.port, share=args.share, device=args.device)
