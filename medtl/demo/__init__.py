"""`medtl demo`: the whole product, headless, on the bundled sample study (see :mod:`medtl.demo.runner`)."""
