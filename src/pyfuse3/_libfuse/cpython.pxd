# C API functions that Cython's own cpython/*.pxd do not declare. Declarations only.
from cpython.ref cimport PyObject

cdef extern from "Python.h":
    # PYGEN_RETURN = 0, PYGEN_ERROR = -1 (exception set), PYGEN_NEXT = 1
    int PyIter_Send(object iterator, object arg, PyObject** presult) except -1
    bint PyCoro_CheckExact(object obj)
