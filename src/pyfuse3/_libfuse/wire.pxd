# Declarations of _libfuse/wire.h: <linux/fuse.h>'s message layouts and constants as tables.
# Declarations only: no code lives here.

cdef extern from "_libfuse/wire.h" nogil:
    ctypedef struct pyfuse3_wire_struct:
        const char* name
        size_t size
    ctypedef struct pyfuse3_wire_field:
        const char* strct
        const char* name
        size_t offset
        size_t size
        int is_signed
        const char* nested
    ctypedef struct pyfuse3_wire_const:
        const char* name
        long long value
    const pyfuse3_wire_struct pyfuse3_wire_structs[]
    const pyfuse3_wire_field pyfuse3_wire_fields[]
    const pyfuse3_wire_const pyfuse3_wire_consts[]
    size_t PYFUSE3_WIRE_N_STRUCTS
    size_t PYFUSE3_WIRE_N_FIELDS
    size_t PYFUSE3_WIRE_N_CONSTS
