"""``vlm-monitor study``: the paper's reliability comparison on any model and dataset.

Signals (:mod:`monitor.study.signals`), statistics (:mod:`monitor.study.stats`),
datasets (:mod:`monitor.study.datasets`), the comparison (:mod:`monitor.study.run`)
and its table and charts (:mod:`monitor.study.output`). Source: *Where Reliability
Lives* (Eq. 1-4, Table 6).
"""
