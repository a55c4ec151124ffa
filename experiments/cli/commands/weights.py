"""``effnas weights import``: convert a timm / torchvision / TF-port checkpoint into an effnas weights file."""

from __future__ import annotations

import argparse

from effnas.experiments.cli.commands._common import examples, output_file_arg
from effnas.experiments.config.choices import PADDINGS
from effnas.experiments.train import guard
from effnas.experiments.weights.convert import LAYOUTS, import_weights, is_weights_file, save_weights


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    example = ("effnas weights import ckpt.pth --layout tfport --model efficientnet_lite0 -o lite0.pt",
               "an efficientnet_pytorch-style EfficientNet-Lite0 checkpoint as an effnas weights file")
    p = sub.add_parser("weights", help="import pretrained weights (timm, torchvision, TF-port checkpoints)",
                       description="Convert foreign checkpoints into effnas weights files (spec + state dict), "
                       "checking every tensor's name and shape. Files are read with weights_only=True.",
                       epilog=examples(example))
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    imp = wsub.add_parser("import", help="convert FILE for --model and write -o OUT.pt",
                          description="Convert a checkpoint in a foreign layout. A missing, unused or differently "
                          "shaped tensor is named in a one-line error. See docs/transfer.md.",
                          epilog=examples(example, (
                              "effnas weights import tf_efficientnet_b0.pth --layout timm --model efficientnet_b0 "
                              "--padding same -o b0.pt", "a timm tf_* checkpoint, which needs TF's same padding")))
    imp.add_argument("file", help="the checkpoint (.pt/.pth state dict)")
    imp.add_argument("--layout", required=True, choices=LAYOUTS,
                     help="timm (EfficientNet/EfficientNetV2/MobileNetV2/ResNet), torchvision (efficientnet_b*, "
                     "mobilenet_v2, resnet*) or tfport (efficientnet_pytorch-style _conv_stem/_blocks.N/_fc)")
    imp.add_argument("--model", required=True, help="the effnas model the weights are for: a name or a spec .json")
    output_file_arg(imp, required=True, help="effnas weights file to write (.pt)")
    imp.add_argument("--num-classes", type=int, metavar="N", help="classifier size of the checkpoint (default: the "
                     "model's, 1000)")
    imp.add_argument("--padding", choices=PADDINGS,
                     help="padding the checkpoint was trained with (default: same for tfport, else symmetric; "
                     "timm tf_* checkpoints need same)")
    imp.add_argument("--bn-eps", type=float, metavar="X",
                     help="BatchNorm epsilon of the checkpoint (default: the model's; timm's non-tf_ EfficientNets "
                     "use 1e-5)")
    imp.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    guard.out_file(args.output, "-o", accept=is_weights_file, protect=(args.file,))
    w = import_weights(args.file, layout=args.layout, model=args.model, num_classes=args.num_classes,
                       padding=args.padding, bn_eps=args.bn_eps)
    save_weights(args.output, w, file=args.file, layout=args.layout)
    n = sum(v.numel() for k, v in w.state.items() if not k.endswith(("running_mean", "running_var",
                                                                      "num_batches_tracked")))
    print(f"{args.file} ({args.layout}) -> {args.output}: {w.spec.name}, {len(w.state)} tensors, {n:,} parameters, "
          f"{w.spec.num_classes} classes, padding {w.spec.padding}")
    return 0
