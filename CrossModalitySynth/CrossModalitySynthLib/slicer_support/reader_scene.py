"""Showing reader-study trials in an MRML scene (what the Slicer module's reader mode calls).

One trial at a time: :meth:`ReaderScene.show` puts the trial's image into a single scalar volume
node named by the image's pseudonymous id (``t_8f3a2c``) and nothing else: no file name, no
patient, no truth, no attributes. The next trial replaces the voxels, geometry and name of the
same node, so the scene never holds more than one study image. The display uses the study's
fixed window/level (grey colour table, automatic window/level off); unless the study allows
window changes, a change made in the viewer (e.g. dragging in a slice view) is undone at once.

If the scene has slice views (the Slicer application), every slice composite node shows the
trial image as background (no foreground, no label map), and the "Red" view is turned to the
trial's plane (axial / coronal / sagittal); the reader-mode GUI uses a one-up Red layout and
resets the field of view. Headless (slicer-core), scenes have no views and only the node is made.

This module imports no Slicer module itself; it works through :mod:`.mrml`.
"""

from typing import Optional, Tuple

from ..io import read_volume
from .mrml import set_ct_window, volume_to_node
from .scene import scene_nodes
from ..reader_study.session import Trial
from ..reader_study.study import Study

ORIENTATION_OF_PLANE = {"axial": "Axial", "coronal": "Coronal", "sagittal": "Sagittal"}
READER_VIEW = "Red"


class ReaderScene:
    """The reader mode's view of one trial at a time.

    :param scene: the MRML scene (``slicer.mrmlScene`` in the application).
    :param window: (width, level) in HU, fixed for the whole study.
    :param allow_window_change: when False, window/level changes in the viewer are undone.
    """

    def __init__(self, scene, window: Tuple[float, float] = (400.0, 40.0), allow_window_change: bool = False):
        if scene is None:
            raise ValueError("ReaderScene needs an MRML scene")
        self.scene = scene
        self.window = (float(window[0]), float(window[1]))
        self.allow_window_change = bool(allow_window_change)
        self.node = None
        self.trial: Optional[Trial] = None
        self._observed = None
        self._observer_tag = None
        self._resetting = False

    @classmethod
    def for_study(cls, study: Study, scene) -> "ReaderScene":
        """A ReaderScene with the study's window and window-change rule."""
        return cls(scene, study.window, study.allow_window_change)

    # ------------------------------------------------------------------ showing

    def show(self, trial: Trial):
        """Show ``trial`` (replacing the previous one); returns the volume node."""
        image = read_volume(trial.path)
        if self.node is not None and self.node.GetScene() is self.scene:
            node = volume_to_node(image, name=trial.image_id, node=self.node)
        else:
            node = volume_to_node(image, name=trial.image_id, scene=self.scene)
        self.node = node
        self.trial = trial
        display = set_ct_window(node, *self.window)
        self._watch_window(display)
        self._show_in_views(node, trial.plane)
        return node

    def clear(self) -> None:
        """Remove the trial node (e.g. at the end of a session)."""
        self._unwatch()
        if self.node is not None and self.node.GetScene() is self.scene:
            self.scene.RemoveNode(self.node)
        self.node = None
        self.trial = None

    # ------------------------------------------------------------------ window lock

    def _watch_window(self, display) -> None:
        if self.allow_window_change:
            self._unwatch()
            return
        if self._observed is display:
            return
        self._unwatch()
        self._observed = display
        self._observer_tag = display.AddObserver("ModifiedEvent", self._on_display_modified)

    def _unwatch(self) -> None:
        if self._observed is not None and self._observer_tag is not None:
            self._observed.RemoveObserver(self._observer_tag)
        self._observed = None
        self._observer_tag = None

    def _on_display_modified(self, caller, event=None) -> None:
        if self._resetting:
            return
        width, level = self.window
        changed = (
            caller.GetAutoWindowLevel()
            or abs(caller.GetWindow() - width) > 1e-6
            or abs(caller.GetLevel() - level) > 1e-6
        )
        if not changed:
            return
        self._resetting = True
        try:
            caller.AutoWindowLevelOff()
            caller.SetWindowLevel(width, level)
        finally:
            self._resetting = False

    # ------------------------------------------------------------------ views

    def _show_in_views(self, node, plane: Optional[str]) -> None:
        for composite in scene_nodes(self.scene, "vtkMRMLSliceCompositeNode"):
            composite.SetBackgroundVolumeID(node.GetID())
            composite.SetForegroundVolumeID(None)
            composite.SetLabelVolumeID(None)
        orientation = ORIENTATION_OF_PLANE.get(plane or "axial", "Axial")
        for slice_node in scene_nodes(self.scene, "vtkMRMLSliceNode"):
            if slice_node.GetLayoutName() == READER_VIEW:
                slice_node.SetOrientation(orientation)
