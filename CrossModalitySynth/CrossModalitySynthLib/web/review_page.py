"""``cmsynth view``: a finished ``cmsynth run`` in a web page, rendered by Slicer's own views.

The input scan and the synthetic image side by side in two axial slice views whose slices are
linked (Slicer's slice linking: scrolling one moves the other), the liver outline on both, and the
liver surface in a 3D view. A slider follows the slice (and the mouse wheel); window presets set
the CT's window: abdomen W 400 / L 40, liver W 150 / L 30, bone W 1800 / L 400. The MRI keeps
Slicer's automatic window. The same page shows a CT -> synthetic MRI run: the presets then apply
to the input CT.

Inputs come from a run folder (its ``summary.json`` names the input, the model's direction and the
outputs) or from explicit files. A physicist can look at a run from any workstation: the page needs
a web browser only.
"""

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Optional

from ..errors import CMSynthError, InputError
from .slicer_views import MISSING_WEB, make_viewer

TITLE = "CrossModalitySynth review"
INPUT_VIEW, SYNTHETIC_VIEW, THREE_D_VIEW = "Input", "Synthetic", "ThreeD"
#: name -> (window, level) in HU
PRESETS = {"abdomen": (400.0, 40.0), "liver": (150.0, 30.0), "bone": (1800.0, 400.0)}
LIVER_COLOUR = (0.95, 0.75, 0.2)


@dataclass
class ReviewFiles:
    """What the page shows: the input scan, the synthetic image and (optionally) the liver label;
    ``input_is_ct`` says which of the two is the CT (the window presets apply to it)."""

    input: str
    synthetic: str
    liver: Optional[str] = None
    input_is_ct: bool = False

    @classmethod
    def from_run(cls, run_dir: str) -> "ReviewFiles":
        """The files of a ``cmsynth run`` output folder, from its ``summary.json``."""
        path = os.path.join(run_dir, "summary.json")
        try:
            with open(path, encoding="utf-8") as f:
                summary = json.load(f)
            first_input = summary["inputs"][0]["path"]
            outputs = summary["outputs"]
            direction = summary["model"]["direction"]
        except FileNotFoundError:
            raise InputError(f"{run_dir} is not a 'cmsynth run' output folder (it has no summary.json).") from None
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise InputError(f"The run summary {path} cannot be read ({exc}); run 'cmsynth run' again.") from None
        liver = outputs.get("liver")
        files = cls(first_input, os.path.join(run_dir, outputs["synthetic"]),
                    os.path.join(run_dir, liver) if liver else None, input_is_ct=str(direction).upper() == "CT->MR")
        files.check()
        return files

    def check(self) -> None:
        for what, path in (("input", self.input), ("synthetic image", self.synthetic), ("liver label", self.liver)):
            if path is not None and not os.path.isfile(path):
                raise InputError(f"The {what} {path} does not exist.")


class ReviewPage:
    """The trame application of one review page."""

    def __init__(self, server, files: ReviewFiles):
        self.server = server
        self.files = files
        views = [{"kind": "slice", "name": INPUT_VIEW, "orientation": "Axial"},
                 {"kind": "slice", "name": SYNTHETIC_VIEW, "orientation": "Axial"}]
        if files.liver:
            views.append({"kind": "3d", "name": THREE_D_VIEW})
        self.viewer = make_viewer(server, views)
        self.input_node = self._load_volume(files.input)
        self.synthetic_node = self._load_volume(files.synthetic)
        self.ct_node = self.input_node if files.input_is_ct else self.synthetic_node
        self.segmentation = self._load_liver(files.liver) if files.liver else None
        for name, node in ((INPUT_VIEW, self.input_node), (SYNTHETIC_VIEW, self.synthetic_node)):
            view = self.viewer.view(name)
            view.set_background_volume_id(node.GetID())
            # Slicer's slice linking: one view's slice moves the other
            self._composite_node(name).SetLinkedControl(True)
            view.fit_view_to_content()
        self.input_slice = self.viewer.view(INPUT_VIEW)
        self.input_slice.get_view_node().AddObserver("ModifiedEvent", self._slice_moved)
        state = server.state
        state.trame__title = TITLE
        low, high = self.input_slice.get_slice_range()
        state.update({"slice": self.input_slice.get_slice_value(), "slice_min": low, "slice_max": high,
                      "slice_step": self.input_slice.get_slice_step(), "preset": "abdomen",
                      "outline": self.segmentation is not None, "has_liver": self.segmentation is not None,
                      "input_label": "Input CT" if files.input_is_ct else "Input MRI",
                      "synthetic_label": "Synthetic MRI" if files.input_is_ct else "Synthetic CT"})
        state.change("slice")(self._slider_moved)
        state.change("preset")(self._preset_changed)
        state.change("outline")(self._outline_changed)
        self._preset_changed(preset="abdomen")
        if self.segmentation is not None:
            self._fit_3d()
            # the browser's view size arrives after the page connects: fit the surface again then
            self.viewer.view(THREE_D_VIEW).interactor().AddObserver("WindowResizeEvent", self._fit_3d, -1.0)
        self._build_ui()

    # ------------------------------------------------------------------ the scene

    def _load_volume(self, path: str):
        nodes = self.viewer.app.io_manager.load_volumes(path)
        if not nodes:
            raise InputError(f"{path} cannot be read as a volume.")
        return nodes[0]

    def _load_liver(self, path: str):
        labels = self.viewer.app.io_manager.load_volumes(path)
        if not labels:
            raise InputError(f"The liver label {path} cannot be read.")
        label = labels[0]
        seg = self.viewer.app.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "liver")
        seg.CreateDefaultDisplayNodes()
        labelmap = self.viewer.app.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
        labelmap.SetAndObserveImageData(label.GetImageData())
        labelmap.CopyOrientation(label)
        self.viewer.app.segmentations_logic.ImportLabelmapToSegmentationNode(labelmap, seg)
        self.viewer.app.scene.RemoveNode(labelmap)
        self.viewer.app.scene.RemoveNode(label)
        if seg.GetSegmentation().GetNumberOfSegments():
            seg.GetSegmentation().GetNthSegment(0).SetColor(*LIVER_COLOUR)
        seg.CreateClosedSurfaceRepresentation()
        display = seg.GetDisplayNode()
        display.SetVisibility2DFill(False)
        display.SetVisibility2DOutline(True)
        display.SetSliceIntersectionThickness(2)
        display.SetVisibility3D(True)
        return seg

    def _fit_3d(self, *_args) -> None:
        view = self.viewer.view(THREE_D_VIEW)
        view.reset_camera()
        view.first_renderer().GetActiveCamera().Zoom(0.8)  # a margin around the surface
        view.schedule_render()

    def _composite_node(self, view_name: str):
        scene = self.viewer.app.scene
        for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
            node = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
            if node.GetLayoutName() == view_name:
                return node
        raise RuntimeError(f"no slice composite node for the view {view_name}")

    def _slice_moved(self, *_args) -> None:
        value = self.input_slice.get_slice_value()
        if abs(value - float(self.server.state.slice or 0.0)) > 1e-6:
            with self.server.state:
                self.server.state.slice = value

    def _slider_moved(self, slice=None, **_kwargs) -> None:  # noqa: A002 (the state's name)
        if slice is not None:
            self.input_slice.set_slice_value(float(slice))  # the linked view follows

    def _preset_changed(self, preset=None, **_kwargs) -> None:
        if preset not in PRESETS:
            return
        window, level = PRESETS[preset]
        display = self.ct_node.GetDisplayNode()
        display.AutoWindowLevelOff()
        display.SetWindowLevel(window, level)

    def _outline_changed(self, outline=None, **_kwargs) -> None:
        if self.segmentation is not None:
            self.segmentation.GetDisplayNode().SetVisibility2DOutline(bool(outline))

    # ------------------------------------------------------------------ the page

    def _build_ui(self) -> None:
        from trame.ui.vuetify3 import VAppLayout
        from trame.widgets import html
        from trame.widgets import vuetify3 as v

        with VAppLayout(self.server, theme="dark", full_height=True) as layout:
            with v.VMain(style="height: 100vh;"):
                with html.Div(style="display: flex; flex-direction: column; height: 100%;"):
                    with html.Div(classes="d-flex pa-1 text-caption", style="gap: 1em;"):
                        html.Span("{{ input_label }}", style="flex: 1;", id="cms-input-label")
                        html.Span("{{ synthetic_label }}", style="flex: 1;", id="cms-synthetic-label")
                        html.Span("Liver surface", style="flex: 1;", v_if="has_liver")
                    with html.Div(style="flex: 1; display: flex; min-height: 0;", id="cms-views"):
                        self.viewer.layout_manager.initialize_layout_grid(layout)
                    with html.Div(classes="d-flex align-center pa-2 ga-4", id="cms-controls"):
                        v.VSlider(v_model="slice", min=("slice_min",), max=("slice_max",), step=("slice_step",),
                                  hide_details=True, label="Slice", id="cms-slice", style="max-width: 30em;")
                        with v.VBtnToggle(v_model="preset", mandatory=True, density="compact", color="primary"):
                            for name, (window, level) in PRESETS.items():
                                v.VBtn(f"{name} W{window:g}/L{level:g}", value=name, id=f"cms-preset-{name}")
                        v.VCheckbox(v_model="outline", label="Liver outline", v_if="has_liver", hide_details=True,
                                    density="compact", id="cms-outline")
        self.layout = layout


def build_parser(parser: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m CrossModalitySynthLib.web.review_page")
    parser.add_argument("run", nargs="?", help="a 'cmsynth run' output folder (its summary.json names the files)")
    parser.add_argument("--mri", "--input", dest="input", metavar="FILE",
                        help="instead of RUN: the input scan (the MRI; the CT for a CT -> MR run)")
    parser.add_argument("--synthetic", metavar="FILE", help="instead of RUN: the synthetic image")
    parser.add_argument("--labels", metavar="FILE", help="instead of RUN: the liver label (optional)")
    parser.add_argument("--input-is-ct", action="store_true",
                        help="with explicit files: the input is the CT (a CT -> synthetic MRI run)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8081, help="port to listen on (default 8081)")
    return parser


def files_from_args(args) -> ReviewFiles:
    if args.run and (args.input or args.synthetic or args.labels):
        raise InputError("Give either a run folder or --mri/--synthetic/--labels files, not both.")
    if args.run:
        return ReviewFiles.from_run(args.run)
    if not (args.input and args.synthetic):
        raise InputError("Give a 'cmsynth run' output folder, or both --mri and --synthetic.")
    files = ReviewFiles(args.input, args.synthetic, args.labels, input_is_ct=args.input_is_ct)
    files.check()
    return files


def serve(args, out=sys.stdout) -> int:
    """Build the page and serve it until interrupted."""
    files = files_from_args(args)
    try:
        from trame.app import get_server
    except ImportError as exc:
        raise InputError(f"{MISSING_WEB} ({exc})") from None
    server = get_server("cmsynth-view", client_type="vue3")
    ReviewPage(server, files)
    shown = "localhost" if args.host in ("127.0.0.1", "localhost") else args.host
    print(f"review page: http://{shown}:{args.port}/  (Ctrl-C stops)", file=out)
    out.flush()
    server.start(host=args.host, port=args.port, open_browser=False, show_connection_info=False,
                 disable_logging=True)
    return 0


def main(argv: Optional[list] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return serve(args)
    except CMSynthError as exc:
        print(str(exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
