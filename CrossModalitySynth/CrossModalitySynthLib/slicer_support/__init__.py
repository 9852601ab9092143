"""What the Slicer module needs beside the core library, without Qt.

The module file ``CrossModalitySynth.py`` keeps only GUI code (widgets, parameter node, timers,
dialogs); everything it computes or decides lives here, so it is importable and tested without
the Slicer application (``slicer-core`` provides the MRML scene in the tests). No module of this
package imports Qt, and none imports ``slicer`` at file scope: functions that need Slicer take
the ``slicer`` module (or a scene) as an argument or import it when called.

One responsibility per module:

- :mod:`.process`: the ``cmsynth`` command line and environment, process groups (Cancel ends the
  whole tree), progress events and the one-line error;
- :mod:`.worker`: the session's long-lived ``cmsynth worker`` child and its requests;
- :mod:`.scene`: export input nodes to files, import results into nodes on the input's exact
  grid, snapshot and roll back the scene;
- :mod:`.synthesis`: one synthesis run (export -> process -> import), polled by a GUI timer; this
  is the compute path of the module's Logic;
- :mod:`.views`: the "compare" layout (MRI | synthetic CT with linked slices, liver outline, 3D);
- :mod:`.evaluation`: the Evaluate section (paired metrics, difference map, table node);
- :mod:`.reader`: the Reader study section (a reader's session shown one trial at a time);
- :mod:`.dependencies`: PyTorch through the PyTorch extension, other packages with consent;
- :mod:`.models`: what the model selector shows; fetch, import and clear models;
- :mod:`.sampledata`: the phantom sample data registered in Slicer's Sample Data module;
- :mod:`.mrml`: the bridge between the library's volume type and MRML nodes (the only module
  of the library that imports ``slicer``, inside its functions);
- :mod:`.reader_scene`: a reader-study trial shown as one pseudonymous volume node.
"""
