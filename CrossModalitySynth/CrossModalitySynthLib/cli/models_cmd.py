"""``cmsynth models``: list, fetch, verify, import, remove model bundles; print their path."""

import json

from ..registry import Registry


def register(sub, help_text: str) -> None:
    p = sub.add_parser(
        "models",
        help=help_text,
        description="Manage model bundles. Fetched and imported bundles are kept in a per-user cache "
        "(CMSYNTH_HOME overrides its location), verified by sha256 before use. Offline sites import the "
        "released bundle .zip with 'models import'.",
    )
    p.add_argument("--registry", help="registry file to use instead of the extension's Models.json "
                   "(also CMSYNTH_REGISTRY)")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = msub.add_parser("list", help="list known models and whether they are installed")
    ls.add_argument("--json", action="store_true", help="print JSON")
    for name, helptext in (
        ("fetch", "download, verify and install a model"),
        ("verify", "check an installed model's files against their sha256"),
        ("remove", "delete a downloaded or imported model from the cache"),
        ("path", "print the folder of an installed model"),
    ):
        sp = msub.add_parser(name, help=helptext)
        sp.add_argument("model_id", metavar="ID")
    imp = msub.add_parser("import", help="install a bundle .zip from disk (offline sites)")
    imp.add_argument("zip_path", metavar="ZIP")
    p.set_defaults(func=run)


def run(args) -> int:
    reg = Registry(args.registry)
    action = args.models_command
    if action == "list":
        rows = reg.as_dicts()
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        if not rows:
            print("no models known")
        for r in rows:
            state = "installed" if r["installed"] else "not installed"
            inputs = " + ".join(r["inputs"]) or "-"
            print(f"{r['id']:<28} {r['version']:<8} {r['direction']:<10} {inputs:<36} {state} ({r['source']})")
        return 0
    if action == "fetch":
        bundle = reg.fetch(args.model_id)
        print(f"{bundle.id} {bundle.version} installed and verified at {bundle.path}")
    elif action == "verify":
        bundle = reg.verify(args.model_id)
        print(f"{bundle.id} {bundle.version}: spec.json and all {len(bundle.contract.files)} files match their sha256")
    elif action == "import":
        bundle = reg.import_zip(args.zip_path)
        print(f"{bundle.id} {bundle.version} imported and verified at {bundle.path}")
    elif action == "remove":
        for folder in reg.remove(args.model_id):
            print(f"removed {folder}")
    elif action == "path":
        print(reg.resolve(args.model_id).path)
    return 0
