"""Slicer's own views in a web page: a headless slicer-core application whose views trame-slicer
streams to the browser.

The pages of :mod:`.reader_page` and :mod:`.review_page` build on :func:`make_viewer`: one
slicer-core scene with its application logic (trame-slicer's ``SlicerApp``), remote-rendered views
(images encoded on the server, sent over the page's websocket) and a layout of named views. Nothing
but pixels of the views leaves the server; node names and file names stay in the scene.

VTK renders off screen with EGL (Mesa's llvmpipe on a machine without a GPU); set
``VTK_DEFAULT_OPENGL_WINDOW`` before starting to choose another window class (for example
``vtkOSOpenGLRenderWindow`` with OSMesa).
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Sequence

MISSING_WEB = (
    "The web pages need the optional 'web' extra; install it with: pip install 'crossmodalitysynth[web]'"
)


def prepare_headless_rendering() -> None:
    """Pick the EGL render window unless the caller chose one (before VTK is imported)."""
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


@dataclass
class Viewer:
    """A slicer-core application with remote views in a trame layout."""

    app: object  #: trame_slicer.core.SlicerApp
    layout_manager: object  #: trame_slicer.core.LayoutManager

    @property
    def scene(self):
        return self.app.scene

    def view(self, name: str):
        """The trame-slicer view whose singleton tag is ``name`` ("Red", "Green", "ThreeD" ...)."""
        return self.app.view_manager.get_view(name)


def _no_gutter(*_args) -> None:
    """Views without trame-slicer's button gutter: the pages draw their own controls."""


def make_viewer(server, views: Sequence[Dict[str, str]], horizontal: bool = True):
    """A :class:`Viewer` on ``server`` whose layout shows ``views`` side by side (or stacked).

    :param views: one dict per view: ``{"kind": "slice", "name": "Red", "orientation": "Axial"}``
        or ``{"kind": "3d", "name": "ThreeD"}``.
    """
    prepare_headless_rendering()
    try:
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories
        from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition
    except ImportError as exc:
        raise ImportError(f"{MISSING_WEB} ({exc})") from None

    app = SlicerApp()
    # VTK's warnings (deprecation notes of the off-screen interactor on every page start) would
    # fill the coordinator's terminal; errors still show
    from vtkmodules.vtkCommonCore import vtkObject

    vtkObject.GlobalWarningDisplayOff()
    # blur_fps: the frame rate of a view the mouse is not over; a reader who only uses the keyboard
    # never hovers it, so it gets the same rate as a hovered view
    register_rca_factories(app.view_manager, server, slice_view_ui_f=_no_gutter, three_d_view_ui_f=_no_gutter,
                           blur_fps=30.0)
    items: List = []
    for view in views:
        if view["kind"] == "3d":
            items.append(ViewLayoutDefinition.threed_view(name=view["name"], label=""))
        else:
            items.append(ViewLayoutDefinition.slice_view(view["orientation"], label=view["name"]))
    direction = LayoutDirection.Horizontal if horizontal else LayoutDirection.Vertical
    layout_manager = LayoutManager(app.scene, app.view_manager, server)
    layout_manager.register_layout("page", Layout(direction, items))
    layout_manager.set_layout("page")
    return Viewer(app, layout_manager)
