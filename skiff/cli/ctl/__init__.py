"""skiffctl: the cluster client of skiff, shaped like kubectl.

Every command lives in its own module and is imported only when it runs; the client
speaks HTTP/1.1 through ``http.client`` synchronously (no aiohttp, no asyncio), so that
simple commands start fast.
"""
