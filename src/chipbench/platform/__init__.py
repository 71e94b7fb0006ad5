"""What the machine is and what it can do: device and CPU detection, the machine id, published peaks,
measured ceilings, huge pages, and the one device helper (torch dtype, device type, sync, timer, peak
memory). May import core; never measure, workloads, execution, results, gate or cli."""
