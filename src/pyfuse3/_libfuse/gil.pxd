# The C API calls that release the GIL by hand where a `with nogil` block cannot (inside a
# nogil callback that libfuse calls with the GIL held or not). Declarations only.

cdef extern from "Python.h" nogil:
    ctypedef struct PyThreadState:
        pass
    int PyGILState_Check()
    PyThreadState* PyEval_SaveThread()
    void PyEval_RestoreThread(PyThreadState*)
