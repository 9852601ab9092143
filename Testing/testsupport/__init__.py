"""What the tests share: images (:mod:`.images`), model bundles (:mod:`.bundles`), DICOM files
(:mod:`.dicom`), the MRML scene fixtures (:mod:`.mrml`), training configurations and the shared
phantom (:mod:`.training`), reader-study data (:mod:`.readers`) and the checkout's paths
(:mod:`.paths`)."""
