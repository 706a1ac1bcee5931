"""The SageMaker serving container contract: ``model.tar.gz`` packaging (:mod:`.package`), request
handling (:mod:`.scorer`) and the HTTP server with ``/ping`` and ``/invocations`` (:mod:`.app`)."""
