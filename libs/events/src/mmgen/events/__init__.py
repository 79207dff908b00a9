"""mmgen.events: the event-sourcing kernel shared by every service (no web code).

Import from the modules themselves (`mmgen.events.envelope`, `mmgen.events.store`, ...); this
package file stays empty so that importing one part never drags in another's dependencies.
"""
