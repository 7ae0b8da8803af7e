"""The Ray Train layer: a thin translation between Ray and the pure training loop in ``hdc_ray.train``.

``cluster`` connects and checks what a cluster can place, ``worker`` is the function every Train worker
runs, ``launch`` builds the ``TorchTrainer`` (also used by each sweep trial) and runs ``hdc-ray train --workers``.
"""
