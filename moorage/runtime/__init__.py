"""The I/O seam to the container engine: ``engine`` declares it, ``docker`` implements it."""
