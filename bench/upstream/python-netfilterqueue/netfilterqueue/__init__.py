from ._impl import (
    COPY_NONE as COPY_NONE,
    COPY_META as COPY_META,
    COPY_PACKET as COPY_PACKET,
    Packet as Packet,
    NetfilterQueue as NetfilterQueue,
    PROTOCOLS as PROTOCOLS,
)
from ._version import (
    VERSION as VERSION,
    __version__ as __version__,
)
