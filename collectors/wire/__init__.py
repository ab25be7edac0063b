"""The wire format shared by the serving process and the monitor: events and their serializer."""
