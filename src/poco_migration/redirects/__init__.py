"""Every POCO URL redirected to mi.com in one hop, and the POCO Store app retired.

One module per concern; import from the module itself (this package exports nothing):

- ``rules``: ``config/redirects.yaml`` loaded and validated (:class:`~.rules.Rules`).
- ``build``: the redirect map built from the POCO and Xiaomi databases (:func:`~.build.build_map`).
- ``validate``: the map checked as a whole before anything is written (:func:`~.validate.validate`).
- ``outputs``: the map written as an nginx ``map`` and a CSV; :func:`~.outputs.export`, a market's cutover.
- ``probe``: the deployed map verified over HTTP, one 301 per URL (:func:`~.probe.probe`).
- ``app``: the POCO Store app's 410 notice and its check (:func:`~.app.check_app_retired`).
- ``server``: the local stand-in for nginx and the app gateway (rehearsals, tests).
"""
