# cython: language_level=3, binding=False
"""<linux/fuse.h>'s message layouts and constants, as the C compiler sees them (for the
kernel-free harness in pyfuse3.testing). Nothing here is on the request path."""
from pyfuse3._libfuse.wire cimport (
    PYFUSE3_WIRE_N_CONSTS, PYFUSE3_WIRE_N_FIELDS, PYFUSE3_WIRE_N_STRUCTS, pyfuse3_wire_consts,
    pyfuse3_wire_field, pyfuse3_wire_fields, pyfuse3_wire_structs,
)

#: struct name -> size in bytes
STRUCTS = {(<bytes>pyfuse3_wire_structs[i].name).decode(): pyfuse3_wire_structs[i].size
           for i in range(PYFUSE3_WIRE_N_STRUCTS)}

cdef dict _fields():
    cdef const pyfuse3_wire_field* f
    fields = {}
    for i in range(PYFUSE3_WIRE_N_FIELDS):
        f = &pyfuse3_wire_fields[i]
        fields.setdefault((<bytes>f.strct).decode(), []).append((
            (<bytes>f.name).decode(), f.offset, f.size, bool(f.is_signed),
            None if f.nested == NULL else (<bytes>f.nested).decode()))
    for rows in fields.values():
        rows.sort(key=lambda row: row[1])
    return fields


#: struct name -> [(field, offset, size, signed, nested struct name or None)] in offset order
FIELDS = _fields()

#: constant name -> value (opcodes: pyfuse3._opcodes.OPERATIONS and OPCODES below)
CONSTANTS = {(<bytes>pyfuse3_wire_consts[i].name).decode(): pyfuse3_wire_consts[i].value
             for i in range(PYFUSE3_WIRE_N_CONSTS)}
